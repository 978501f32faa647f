package dev.edgefgic.demo.logic

import java.util.Locale

data class Prediction(val index: Int, val label: String, val probability: Float)

/** Model output -> probabilities -> top-k, as edge_fgic/runtime/litert_runner.py reads the output tensor. */
object Postprocess {
    /** (q - zeroPoint) * scale in float32, q read as int8 or uint8 from the raw output bytes. */
    fun dequantize(raw: ByteArray, io: TensorIo): FloatArray {
        if (!io.quantized) throw IllegalArgumentException("output is ${io.dtype}, not quantized")
        val scale = io.scale.toFloat()
        return FloatArray(raw.size) { i ->
            val q = if (io.dtype == "uint8") raw[i].toInt() and 0xFF else raw[i].toInt()
            (q - io.zeroPoint).toFloat() * scale
        }
    }

    /** Softmax, shifted by the maximum so large logits cannot overflow exp(); sums in double. */
    fun softmax(logits: FloatArray): FloatArray {
        if (logits.isEmpty()) return FloatArray(0)
        var max = Double.NEGATIVE_INFINITY
        for (v in logits) if (v > max) max = v.toDouble()
        val e = DoubleArray(logits.size) { Math.exp(logits[it] - max) }
        val sum = e.sum()
        return FloatArray(logits.size) { (e[it] / sum).toFloat() }
    }

    /** The [k] most probable classes, highest first; equal probabilities keep class order. */
    fun topK(probabilities: FloatArray, labels: List<String>, k: Int): List<Prediction> {
        if (labels.size != probabilities.size) {
            throw IllegalArgumentException("${probabilities.size} scores for ${labels.size} labels")
        }
        return probabilities.indices
            .sortedWith(Comparator { a, b ->
                if (probabilities[a] != probabilities[b]) probabilities[b].compareTo(probabilities[a]) else a - b
            })
            .take(k)
            .map { Prediction(it, labels[it], probabilities[it]) }
    }
}

/**
 * Exponential moving average of per-frame probabilities, so the overlay does not flicker between classes
 * on noisy frames: smoothed = alpha * new + (1 - alpha) * smoothed; the first frame is taken as is.
 */
class ProbabilitySmoother(private val alpha: Float = 0.3f) {
    private var state: FloatArray? = null

    init {
        if (!(alpha > 0f && alpha <= 1f)) throw IllegalArgumentException("alpha must be in (0, 1], got $alpha")
    }

    fun update(probabilities: FloatArray): FloatArray {
        val s = state
        val next = if (s == null || s.size != probabilities.size) {
            probabilities.copyOf() // first frame, or another model: start over
        } else {
            FloatArray(s.size) { alpha * probabilities[it] + (1f - alpha) * s[it] }
        }
        state = next
        return next.copyOf()
    }

    fun reset() { state = null }
}

/** Median of the last [window] latencies: robust to the odd slow frame (GC, thermal) that a mean is not. */
class LatencyTracker(private val window: Int = 30) {
    private val values = DoubleArray(window)
    private var count = 0
    private var next = 0

    init {
        if (window < 1) throw IllegalArgumentException("window must be >= 1")
    }

    fun add(ms: Double) {
        values[next] = ms
        next = (next + 1) % window
        if (count < window) count++
    }

    val size: Int get() = count

    /** NaN before the first sample. */
    val median: Double
        get() {
            if (count == 0) return Double.NaN
            val sorted = values.copyOf(count)
            java.util.Arrays.sort(sorted)
            return if (count % 2 == 1) sorted[count / 2] else (sorted[count / 2 - 1] + sorted[count / 2]) / 2.0
        }
}

/** The overlay's text: model and precision, top-k with percentages, median latencies. */
object Overlay {
    /** The overlay's text; [note] (e.g. [CheckedModel.note]: "no model.tflite.json ...") goes on a last line. */
    fun format(spec: ModelSpec, top: List<Prediction>, inferenceMs: Double, frameMs: Double, note: String? = null): String {
        val sb = StringBuilder()
        sb.append(spec.title).append("  in:").append(spec.input.dtype).append('\n')
        for (p in top) sb.append(String.format(Locale.US, "%5.1f%%  %s\n", p.probability * 100f, p.label))
        sb.append(String.format(Locale.US, "inference %s ms · frame %s ms (median)", ms(inferenceMs), ms(frameMs)))
        if (note != null) sb.append('\n').append(note)
        return sb.toString()
    }

    private fun ms(v: Double): String = if (v.isNaN()) "-" else String.format(Locale.US, "%.1f", v)
}
