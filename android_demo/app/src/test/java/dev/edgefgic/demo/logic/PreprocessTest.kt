package dev.edgefgic.demo.logic

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test
import java.nio.ByteBuffer

class PreprocessTest {
    private fun spec(size: Int, resize: Int, interpolation: String, mean: List<Double>, std: List<Double>, io: TensorIo) =
        ModelSpec("m", "x", (0 until 3).map { "c$it" }, size, resize, 1.0, interpolation, mean, std, "NHWC", io, TensorIo("float32"))

    private fun hexToInts(hex: String): IntArray = IntArray(hex.length / 2) { Integer.parseInt(hex.substring(2 * it, 2 * it + 2), 16) }

    private fun argb(rgb: IntArray): IntArray = IntArray(rgb.size / 3) { i ->
        (0xFF shl 24) or (rgb[3 * i] shl 16) or (rgb[3 * i + 1] shl 8) or rgb[3 * i + 2] // opaque, as camera frames are
    }

    /**
     * Python fed the same synthetic frames, turned upright, through edge_fgic.predict.Classifier on each fixture
     * model: the eval transform its manifest describes (torchvision Resize + CenterCrop + ToTensor + Normalize on
     * a PIL image), then LiteRTRunner, whose quantized tensor was recorded as the interpreter received it.
     * Tolerances:
     * - the 8-bit resized pixels must be identical: the app repeats Pillow's fixed-point resampling exactly;
     * - floats within 1e-6: both sides do the same float32 operations, so only operation order could move a
     *   value by an ulp (~2.4e-7 at |x| <= 2.6), while one 8-bit level is 1/(255 std) >= 0.015 here: any
     *   resampling or cropping mistake is four orders of magnitude above the tolerance;
     * - quantized values exactly.
     */
    @Test
    fun matchesTheProjectsEvalTransform() {
        val files = Fixtures.files("preprocess", ".tsv")
        for (file in files) {
            val r = Fixtures.records(file).single()
            // the spec comes from the model's embedded manifest, as in the app: sizes, filter, mean/std, quantization
            val s = ModelSpec.fromTflite(ByteBuffer.wrap(java.io.File(Fixtures.dir("models"), r.one("model")).readBytes()))
            val io = s.input
            val pixels = argb(hexToInts(r.one("rgb")))
            val w = r.int("width")
            val h = r.int("height")
            val rot = r.int("rotation")
            val pre = Preprocessor(s)

            val crop = pre.crop(pixels, w, h, rot)
            val got = IntArray(crop.size * 3) { i -> (crop[i / 3] shr (16 - 8 * (i % 3))) and 0xFF }
            assertArrayEquals("${file.name}: resized + cropped RGB", hexToInts(r.one("expected_rgb")), got)

            val floats = pre.toFloats(pixels, w, h, rot)
            val want = r.doubles("expected_float")
            assertEquals(want.size, floats.size)
            for (i in want.indices) assertEquals("${file.name}: float [$i]", want[i], floats[i].toDouble(), 1e-6)

            if (io.quantized) {
                val q = pre.toQuantized(pixels, w, h, rot)
                val asInts = IntArray(q.size) { if (io.dtype == "uint8") q[it].toInt() and 0xFF else q[it].toInt() }
                assertArrayEquals("${file.name}: quantized", r.ints("expected_quantized"), asInts)
            }
        }
        Fixtures.report("preprocess", files.size)
    }

    @Test
    fun rotatesClockwise() {
        // 3 x 2 frame:  1 2 3      90: 4 1     180: 6 5 4     270: 3 6
        //               4 5 6          5 2          3 2 1          2 5
        //                              6 3                         1 4
        val px = intArrayOf(1, 2, 3, 4, 5, 6)
        assertArrayEquals(px, Images.rotate(px, 3, 2, 0))
        assertArrayEquals(intArrayOf(4, 1, 5, 2, 6, 3), Images.rotate(px, 3, 2, 90))
        assertArrayEquals(intArrayOf(6, 5, 4, 3, 2, 1), Images.rotate(px, 3, 2, 180))
        assertArrayEquals(intArrayOf(3, 6, 2, 5, 1, 4), Images.rotate(px, 3, 2, 270))
        assertThrows(IllegalArgumentException::class.java) { Images.rotate(px, 3, 2, 45) }
    }

    @Test
    fun resizeAndCropArithmeticFollowsTorchvision() {
        assertArrayEquals(intArrayOf(256, 341), Images.resizedSize(480, 640, 256)) // int(256 * 640 / 480) = 341
        assertArrayEquals(intArrayOf(341, 256), Images.resizedSize(640, 480, 256))
        assertArrayEquals(intArrayOf(10, 10), Images.resizedSize(7, 7, 10))
        // round((size - crop) / 2) with Python's half-to-even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2
        assertEquals(0, Images.cropOffset(17, 16))
        assertEquals(2, Images.cropOffset(19, 16))
        assertEquals(2, Images.cropOffset(21, 16))
        assertEquals(58, Images.cropOffset(340, 224))
    }

    @Test
    fun uniformFramesStayUniformAtEveryFilter() {
        // a flat grey frame must come out flat whatever the kernel: weights are normalized to sum to 1
        for (f in listOf("bilinear", "bicubic", "nearest")) {
            val s = spec(8, 9, f, listOf(0.0, 0.0, 0.0), listOf(1.0, 1.0, 1.0), TensorIo("float32"))
            val x = Preprocessor(s).toFloats(IntArray(37 * 23) { 0xFF808080.toInt() }, 37, 23, 90)
            for (v in x) assertEquals(f, 128f / 255f, v, 0f)
        }
    }

    @Test
    fun quantizationRoundsHalfToEvenAndClamps() {
        // scale 1/255 on mean 0 std 1: x = p/255, q = round(p + zp); zp -128 maps 0..255 onto -128..127
        val s = spec(1, 1, "bilinear", listOf(0.0, 0.0, 0.0), listOf(1.0, 1.0, 1.0), TensorIo("int8", 1.0 / 255, -128))
        val q = Preprocessor(s).toQuantized(intArrayOf(0xFF00FF7F.toInt()), 1, 1, 0)
        assertArrayEquals(byteArrayOf(-128, 127, -1), q)
        val u = spec(1, 1, "bilinear", listOf(0.5, 0.5, 0.5), listOf(0.25, 0.25, 0.25), TensorIo("uint8", 0.01, 128))
        val uq = Preprocessor(u).toQuantized(intArrayOf(0xFF00FF80.toInt()), 1, 1, 0)
        assertArrayEquals(intArrayOf(0, 255, 129), IntArray(3) { uq[it].toInt() and 0xFF }) // x = -2, 2, 0.00784
        // x / scale exactly 0.5 (0.2f / 0.4f): numpy's round gives 0 and, with zero point 1, 2 (Math.round: 1 and 2)
        for ((zp, want) in listOf(0 to 0, 1 to 2)) {
            val h = spec(1, 1, "bilinear", listOf(0.0, 0.0, 0.0), listOf(1.0, 1.0, 1.0), TensorIo("int8", 0.4, zp))
            val q3 = Preprocessor(h).toQuantized(intArrayOf(0xFF333333.toInt()), 1, 1, 0)
            assertArrayEquals(byteArrayOf(want.toByte(), want.toByte(), want.toByte()), q3)
        }
    }
}
