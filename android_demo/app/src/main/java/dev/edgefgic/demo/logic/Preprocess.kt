package dev.edgefgic.demo.logic

/**
 * Pillow's resampling filters (src/libImaging/Resample.c). edge-fgic evaluates with torchvision on PIL images,
 * so the app resizes the way Pillow does, bicubic included: same kernels, same antialiasing (the kernel widens
 * by the downscale factor), same 22-bit fixed-point arithmetic, hence the same 8-bit pixels as the Python side.
 */
enum class Filter(val support: Double) {
    BILINEAR(1.0), BICUBIC(2.0), NEAREST(0.0);

    fun weight(x: Double): Double {
        val a = Math.abs(x)
        return when (this) {
            BILINEAR -> if (a < 1.0) 1.0 - a else 0.0
            BICUBIC -> when { // Keys kernel, a = -0.5, written as Pillow evaluates it
                a < 1.0 -> ((-0.5 + 2.0) * a - (-0.5 + 3.0)) * a * a + 1
                a < 2.0 -> (((a - 5) * a + 8) * a - 4) * -0.5
                else -> 0.0
            }
            NEAREST -> 0.0 // not a convolution: see Images.nearest
        }
    }

    companion object {
        fun of(name: String): Filter = when (name) {
            "bilinear" -> BILINEAR
            "bicubic" -> BICUBIC
            "nearest" -> NEAREST
            else -> throw IllegalArgumentException("unsupported interpolation '$name'")
        }
    }
}

/**
 * Per output index: the first input index, how many follow, and their fixed-point weights
 * (Pillow's precompute_coeffs + normalize_coeffs_8bpc), for outputs [first, first + count) only.
 */
internal class Coefficients(inSize: Int, outSize: Int, filter: Filter, first: Int, count: Int) {
    val start = IntArray(count)
    val length = IntArray(count)
    val ksize: Int
    val k: IntArray

    init {
        val scale = inSize.toDouble() / outSize
        val filterScale = if (scale < 1.0) 1.0 else scale // downscaling widens the kernel: antialiasing
        val support = filter.support * filterScale
        ksize = Math.ceil(support).toInt() * 2 + 1
        k = IntArray(count * ksize)
        val w = DoubleArray(ksize)
        for (i in 0 until count) {
            val center = (first + i + 0.5) * scale
            var lo = (center - support + 0.5).toInt() // C's (int) truncation, as Pillow
            if (lo < 0) lo = 0
            var hi = (center + support + 0.5).toInt()
            if (hi > inSize) hi = inSize
            val n = hi - lo
            var sum = 0.0
            for (x in 0 until n) {
                w[x] = filter.weight((x + lo - center + 0.5) * (1.0 / filterScale))
                sum += w[x]
            }
            for (x in 0 until n) {
                val v = if (sum != 0.0) w[x] / sum else w[x]
                k[i * ksize + x] = if (v < 0) (-0.5 + v * ONE).toInt() else (0.5 + v * ONE).toInt()
            }
            start[i] = lo
            length[i] = n
        }
    }

    companion object {
        const val BITS = 22 // Pillow's PRECISION_BITS = 32 - 8 - 2
        const val ONE = (1 shl BITS).toDouble()
        const val HALF = 1 shl (BITS - 1)

        fun clip8(v: Int): Int { val x = v shr BITS; return if (x < 0) 0 else if (x > 255) 255 else x }
    }
}

/** Pixel-array geometry on packed ARGB ints (what Bitmap.getPixels returns); outputs are 0xRRGGBB. */
object Images {
    /** [src] (width x height) turned clockwise by [degrees]; CameraX's rotationDegrees makes a frame upright. */
    fun rotate(src: IntArray, width: Int, height: Int, degrees: Int): IntArray {
        if (src.size != width * height) throw IllegalArgumentException("${src.size} pixels for ${width}x$height")
        if (degrees == 0) return src
        val out = IntArray(src.size)
        for (y in 0 until height) {
            for (x in 0 until width) {
                val to = when (degrees) {
                    90 -> x * height + (height - 1 - y)       // new size height x width
                    180 -> (height - 1 - y) * width + (width - 1 - x)
                    270 -> (width - 1 - x) * height + y
                    else -> throw IllegalArgumentException("rotation must be 0, 90, 180 or 270, got $degrees")
                }
                out[to] = src[y * width + x]
            }
        }
        return out
    }

    /** (width, height) after resizing the shorter side to [shorter], as torchvision's Resize(int) computes it. */
    fun resizedSize(width: Int, height: Int, shorter: Int): IntArray {
        val short = Math.min(width, height)
        val long = Math.max(width, height)
        val newLong = (shorter.toLong() * long).toDouble() / short // Python: int(size * long / short)
        return if (width <= height) intArrayOf(shorter, newLong.toInt()) else intArrayOf(newLong.toInt(), shorter)
    }

    /** torchvision CenterCrop's offset: int(round((size - crop) / 2.0)), Python rounding half to even. */
    fun cropOffset(size: Int, crop: Int): Int = Math.rint((size - crop) / 2.0).toInt()

    /**
     * The [crop] x [crop] window at ([left], [top]) of [src] resized to [outW] x [outH]: Pillow's two passes
     * (horizontal, then vertical, each rounding to 8 bits), computed for the window's pixels only.
     */
    fun resizeCrop(src: IntArray, w: Int, h: Int, filter: Filter, outW: Int, outH: Int, left: Int, top: Int, crop: Int): IntArray {
        if (left < 0 || top < 0 || left + crop > outW || top + crop > outH) {
            throw IllegalArgumentException("crop $crop at ($left, $top) outside ${outW}x$outH")
        }
        if (outW == w && outH == h) return window(src, w, left, top, crop) // torchvision skips the resize
        if (filter == Filter.NEAREST) return nearest(src, w, h, outW, outH, left, top, crop)
        val vert = if (outH != h) Coefficients(h, outH, filter, top, crop) else null
        val rowFirst = vert?.start?.get(0) ?: top
        val rowEnd = if (vert != null) vert.start[crop - 1] + vert.length[crop - 1] else top + crop
        // pass 1 (horizontal) for the source rows pass 2 reads; Pillow skips a pass whose size does not change
        val tmp: IntArray
        val tmpStride: Int
        val tmpLeft: Int
        val tmpTop: Int
        if (outW != w) {
            val hc = Coefficients(w, outW, filter, left, crop)
            tmp = IntArray((rowEnd - rowFirst) * crop)
            for (y in rowFirst until rowEnd) {
                for (i in 0 until crop) {
                    tmp[(y - rowFirst) * crop + i] = convolve(src, y * w + hc.start[i], 1, hc.k, i * hc.ksize, hc.length[i])
                }
            }
            tmpStride = crop; tmpLeft = 0; tmpTop = rowFirst
        } else {
            tmp = src; tmpStride = w; tmpLeft = left; tmpTop = 0
        }
        val out = IntArray(crop * crop)
        for (j in 0 until crop) {
            for (i in 0 until crop) {
                out[j * crop + i] = if (vert == null) {
                    tmp[(top + j - tmpTop) * tmpStride + tmpLeft + i]
                } else {
                    convolve(tmp, (vert.start[j] - tmpTop) * tmpStride + tmpLeft + i, tmpStride, vert.k, j * vert.ksize, vert.length[j])
                }
            }
        }
        return out
    }

    /** One output pixel: n taps of [px] from [at], [step] apart, weighted by k[k0 ...], rounded as Pillow. */
    private fun convolve(px: IntArray, at: Int, step: Int, k: IntArray, k0: Int, n: Int): Int {
        var r = Coefficients.HALF
        var g = Coefficients.HALF
        var b = Coefficients.HALF
        for (t in 0 until n) {
            val p = px[at + t * step]
            val c = k[k0 + t]
            r += ((p shr 16) and 0xFF) * c
            g += ((p shr 8) and 0xFF) * c
            b += (p and 0xFF) * c
        }
        return (Coefficients.clip8(r) shl 16) or (Coefficients.clip8(g) shl 8) or Coefficients.clip8(b)
    }

    private fun window(src: IntArray, w: Int, left: Int, top: Int, crop: Int): IntArray {
        val out = IntArray(crop * crop)
        for (j in 0 until crop) for (i in 0 until crop) out[j * crop + i] = src[(top + j) * w + left + i] and 0xFFFFFF
        return out
    }

    /** Pillow's nearest resize (ImagingScaleAffine): sample at accumulated (i + 0.5) * scale, truncated. */
    private fun nearest(src: IntArray, w: Int, h: Int, outW: Int, outH: Int, left: Int, top: Int, crop: Int): IntArray {
        val xs = accumulated(w.toDouble() / outW, left + crop)
        val ys = accumulated(h.toDouble() / outH, top + crop)
        val out = IntArray(crop * crop)
        for (j in 0 until crop) {
            for (i in 0 until crop) {
                out[j * crop + i] = src[Math.min(ys[top + j], h - 1) * w + Math.min(xs[left + i], w - 1)] and 0xFFFFFF
            }
        }
        return out
    }

    private fun accumulated(scale: Double, n: Int): IntArray {
        val out = IntArray(n)
        var at = scale * 0.5 // summed step by step, not multiplied: Pillow's rounding, kept exactly
        for (i in 0 until n) {
            out[i] = at.toInt()
            at += scale
        }
        return out
    }
}

/**
 * Camera frame -> model input, exactly as edge-fgic evaluates (edge_fgic/data/transforms.py eval_transform and
 * edge_fgic/runtime/litert_runner.py): turn upright, resize the shorter side to resizeSize, centre-crop
 * inputSize, x = (pixel / 255 - mean) / std in float32 (NHWC, RGB); for int8/uint8 inputs
 * q = clamp(round_half_even(x / scale + zero_point)). Keeps no state between frames; pass `out` to reuse a buffer.
 */
class Preprocessor(private val spec: ModelSpec) {
    private val filter = Filter.of(spec.interpolation)
    private val size = spec.inputSize
    private val mean = FloatArray(3) { spec.mean[it].toFloat() } // torchvision normalizes in float32
    private val std = FloatArray(3) { spec.std[it].toFloat() }
    val elements: Int = size * size * 3

    /** The upright, resized, centre-cropped pixels (0xRRGGBB, row-major, inputSize x inputSize). */
    fun crop(pixels: IntArray, width: Int, height: Int, rotationDegrees: Int): IntArray {
        val upright = Images.rotate(pixels, width, height, rotationDegrees)
        val w = if (rotationDegrees % 180 == 0) width else height
        val h = if (rotationDegrees % 180 == 0) height else width
        val resized = Images.resizedSize(w, h, spec.resizeSize)
        val left = Images.cropOffset(resized[0], size)
        val top = Images.cropOffset(resized[1], size)
        return Images.resizeCrop(upright, w, h, filter, resized[0], resized[1], left, top, size)
    }

    /** The normalized float32 NHWC input. */
    fun toFloats(pixels: IntArray, width: Int, height: Int, rotationDegrees: Int, out: FloatArray = FloatArray(elements)): FloatArray {
        val rgb = crop(pixels, width, height, rotationDegrees)
        for (i in rgb.indices) {
            val p = rgb[i]
            out[3 * i] = (((p shr 16) and 0xFF) / 255f - mean[0]) / std[0]
            out[3 * i + 1] = (((p shr 8) and 0xFF) / 255f - mean[1]) / std[1]
            out[3 * i + 2] = ((p and 0xFF) / 255f - mean[2]) / std[2]
        }
        return out
    }

    /** The int8/uint8 NHWC input (raw bytes as the interpreter reads them: uint8 200 is the byte 0xC8). */
    fun toQuantized(pixels: IntArray, width: Int, height: Int, rotationDegrees: Int, out: ByteArray = ByteArray(elements)): ByteArray {
        val io = spec.input
        if (!io.quantized) throw IllegalStateException("input is ${io.dtype}, not quantized")
        val x = toFloats(pixels, width, height, rotationDegrees)
        val scale = io.scale.toFloat() // numpy: float32 array / Python float stays float32
        val lo = if (io.dtype == "int8") -128 else 0
        val hi = if (io.dtype == "int8") 127 else 255
        for (i in x.indices) {
            val q = Math.rint((x[i] / scale + io.zeroPoint).toDouble()).toInt()
            out[i] = (if (q < lo) lo else if (q > hi) hi else q).toByte()
        }
        return out
    }
}
