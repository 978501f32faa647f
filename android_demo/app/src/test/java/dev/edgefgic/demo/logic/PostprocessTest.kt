package dev.edgefgic.demo.logic

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

class PostprocessTest {
    /**
     * Python computed, per case: the dequantized output as LiteRTRunner does ((q - zp) * scale in float32),
     * a float64 softmax and a stable arg-sort. Dequantized values must match exactly (same float32 ops);
     * probabilities within 1e-6 (the app sums in double and rounds once to float32: error <= 6e-8).
     */
    @Test
    fun matchesPythonOnKnownOutputs() {
        val records = Fixtures.records(java.io.File(Fixtures.dir("postprocess"), "cases.tsv"))
        for (r in records) {
            val io = TensorIo(r.one("dtype"), r.double("scale"), r.int("zero_point"))
            val logits = if (io.quantized) {
                val raw = ByteArray(r.list("raw").size) { r.ints("raw")[it].toByte() }
                Postprocess.dequantize(raw, io).also { deq ->
                    val want = r.doubles("dequantized")
                    for (i in want.indices) assertEquals("${r.name}: dequantized [$i]", want[i], deq[i].toDouble(), 0.0)
                }
            } else {
                r.doubles("raw").map { it.toFloat() }.toFloatArray()
            }
            val probs = Postprocess.softmax(logits)
            val want = r.doubles("probs")
            for (i in want.indices) assertEquals("${r.name}: prob [$i]", want[i], probs[i].toDouble(), 1e-6)
            val labels = r.list("labels")
            val top = Postprocess.topK(probs, labels, r.ints("top").size)
            assertArrayEquals(r.name, r.ints("top"), top.map { it.index }.toIntArray())
            assertEquals(r.name, r.ints("top").map { labels[it] }, top.map { it.label })
        }
        Fixtures.report("postprocess", records.size)
    }

    @Test
    fun softmaxIsStableAndNormalized() {
        val p = Postprocess.softmax(floatArrayOf(1000f, 999f, -1000f))
        assertTrue(p.all { !it.isNaN() && !it.isInfinite() })
        assertEquals(1.0, p.sum().toDouble(), 1e-6)
        assertEquals(1.0 / (1.0 + Math.exp(-1.0)), p[0].toDouble(), 1e-6)
        assertEquals(0f, p[2], 0f)
        assertArrayEquals(floatArrayOf(0.25f, 0.25f, 0.25f, 0.25f), Postprocess.softmax(FloatArray(4) { 7f }), 0f)
    }

    @Test
    fun topKOrdersByProbabilityThenClass() {
        val top = Postprocess.topK(floatArrayOf(0.1f, 0.3f, 0.3f, 0.3f), listOf("a", "b", "c", "d"), 3)
        assertEquals(listOf(1, 2, 3), top.map { it.index })
        assertEquals(4, Postprocess.topK(floatArrayOf(0.1f, 0.2f, 0.3f, 0.4f), listOf("a", "b", "c", "d"), 10).size)
        assertThrows(IllegalArgumentException::class.java) { Postprocess.topK(floatArrayOf(1f), listOf("a", "b"), 1) }
    }

    @Test
    fun dequantizeReadsUint8AsUnsigned() {
        val d = Postprocess.dequantize(byteArrayOf(0, -1, 10), TensorIo("uint8", 0.5, 10))
        assertArrayEquals(floatArrayOf(-5f, 122.5f, 0f), d, 0f) // byte -1 is 255 in a uint8 tensor
        assertArrayEquals(floatArrayOf(-10f), Postprocess.dequantize(byteArrayOf(-1), TensorIo("int8", 2.0, 4)), 0f)
    }

    @Test
    fun smootherIsAnExponentialMovingAverage() {
        val s = ProbabilitySmoother(alpha = 0.25f)
        assertArrayEquals(floatArrayOf(1f, 0f), s.update(floatArrayOf(1f, 0f)), 0f) // first frame as is
        assertArrayEquals(floatArrayOf(0.75f, 0.25f), s.update(floatArrayOf(0f, 1f)), 1e-7f)
        assertArrayEquals(floatArrayOf(0.5625f, 0.4375f), s.update(floatArrayOf(0f, 1f)), 1e-7f)
        assertArrayEquals(floatArrayOf(0.2f, 0.3f, 0.5f), s.update(floatArrayOf(0.2f, 0.3f, 0.5f)), 0f) // new class count: restart
        s.reset()
        assertArrayEquals(floatArrayOf(0f, 1f, 0f), s.update(floatArrayOf(0f, 1f, 0f)), 0f)
        assertThrows(IllegalArgumentException::class.java) { ProbabilitySmoother(0f) }
    }

    @Test
    fun latencyTrackerReportsTheRollingMedian() {
        val t = LatencyTracker(window = 4)
        assertTrue(t.median.isNaN())
        t.add(5.0)
        assertEquals(5.0, t.median, 0.0)
        t.add(1.0); t.add(100.0)
        assertEquals(5.0, t.median, 0.0) // one slow frame does not move it
        t.add(3.0)
        assertEquals(4.0, t.median, 0.0) // even count: mean of the middle two (3, 5)
        t.add(2.0); t.add(2.0) // window of 4: 5.0 and 1.0 are gone -> 100, 3, 2, 2
        assertEquals(2.5, t.median, 0.0)
        assertEquals(4, t.size)
    }

    @Test
    fun overlayShowsModelTopKAndLatency() {
        val spec = ModelSpec("convnext_atto", "int8", listOf("a", "b"), 64, 64, 1.0, "bicubic", listOf(0.5, 0.5, 0.5),
                             listOf(0.25, 0.25, 0.25), "NHWC", TensorIo("int8", 0.01, 3), TensorIo("int8", 0.02, -40))
        val text = Overlay.format(spec, listOf(Prediction(1, "b", 0.873f), Prediction(0, "a", 0.127f)), 12.345, Double.NaN)
        assertEquals("convnext_atto (int8)  in:int8\n 87.3%  b\n 12.7%  a\ninference 12.3 ms · frame - ms (median)", text)
    }
}
