package dev.edgefgic.demo.logic

import java.nio.ByteBuffer

/** A tensor's element type and, for int8/uint8, the affine map real = (q - zeroPoint) * scale. */
data class TensorIo(val dtype: String, val scale: Double = 0.0, val zeroPoint: Int = 0) {
    val quantized: Boolean get() = dtype == "int8" || dtype == "uint8"
    val bytesPerElement: Int get() = if (quantized) 1 else 4
}

/** What the interpreter reports about a tensor, to check the manifest against the model itself. */
data class TensorInfo(val dtype: String, val shape: List<Int>, val scale: Double, val zeroPoint: Int)

/**
 * Everything the app needs to feed the model and read its answer, from the manifest that
 * `edge-fgic export --target tflite` embeds (edge_fgic/manifest/__init__.py). Nothing here is guessed.
 */
data class ModelSpec(
    val modelName: String,
    val precision: String,
    val classes: List<String>,
    val inputSize: Int,
    val resizeSize: Int,
    val cropPct: Double,
    val interpolation: String,
    val mean: List<Double>,
    val std: List<Double>,
    val layout: String,
    val input: TensorIo,
    val output: TensorIo
) {
    val title: String get() = "$modelName ($precision)"

    /**
     * Disagreements between this manifest and the model's own tensors (read from the flatbuffer by
     * [TfliteFile.ioTensors], or reported by the interpreter); empty when the app can run it. Each entry is a
     * clause naming both sides: the class count against the output's last dimension, the input's layout
     * (NHWC, RGB: channels last), batch and H/W against `input_size`, then dtype and int8/uint8 scale/zero-point.
     */
    fun mismatches(inTensor: TensorInfo, outTensor: TensorInfo): List<String> {
        val out = ArrayList<String>()
        val last = outTensor.shape.lastOrNull()
        if (last != classes.size) {
            out.add("the manifest names ${classes.size} classes, the model outputs ${last ?: "nothing"} (output shape ${outTensor.shape})")
        }
        val s = inTensor.shape
        val want = listOf(1, inputSize, inputSize, 3)
        when {
            s.size != 4 -> out.add("the manifest says input $layout $want, the model takes $s (not 4-D)")
            s[3] != 3 && s[1] == 3 -> out.add("the manifest says input $layout $want, the model takes NCHW $s")
            s[3] != 3 -> out.add("the manifest says 3 input channels (RGB, $layout), the model takes ${s[3]} (shape $s)")
            s[1] != inputSize || s[2] != inputSize ->
                out.add("the manifest says input ${inputSize}x$inputSize, the model takes ${s[1]}x${s[2]} (shape $s)")
            s[0] != 1 -> out.add("the app feeds one image, the model takes a batch of ${s[0]} (shape $s)")
        }
        checkIo("input", input, inTensor, out)
        checkIo("output", output, outTensor, out)
        return out
    }

    private fun checkIo(what: String, io: TensorIo, t: TensorInfo, out: MutableList<String>) {
        if (io.dtype != t.dtype) {
            out.add("the manifest says $what dtype ${io.dtype}, the model's is ${t.dtype}")
        } else if (io.quantized && (io.scale.toFloat() != t.scale.toFloat() || io.zeroPoint != t.zeroPoint)) {
            // the model holds scales as float32; the manifest has the same float32 printed as a double
            out.add("the manifest says $what scale/zero-point (${io.scale}, ${io.zeroPoint}), the model's are (${t.scale.toFloat()}, ${t.zeroPoint})")
        }
    }

    companion object {
        const val SCHEMA = "edge-fgic/manifest"
        const val SCHEMA_VERSION = 1
        private val DTYPES = setOf("float32", "int8", "uint8")
        private val INTERPOLATIONS = setOf("bilinear", "bicubic", "nearest")

        /** The spec embedded in a .tflite's bytes (the asset, memory-mapped on Android). */
        fun fromTflite(model: ByteBuffer): ModelSpec = fromManifest(TfliteFile.manifestJson(model))

        fun fromManifest(json: String): ModelSpec = fromTree(parse(json))

        /** The manifest's JSON tree ([Json.parse]); a [ModelFileException] when it is not JSON. */
        fun parse(json: String): Any? = try {
            Json.parse(json)
        } catch (e: JsonException) {
            throw ModelFileException("manifest is not valid JSON (${e.message})")
        }

        /** The spec from an already parsed manifest. */
        fun fromTree(tree: Any?): ModelSpec {
            val root = Node(tree, "manifest")
            val schema = root.opt("schema")?.string()
            if (schema != null && schema != SCHEMA) throw ModelFileException("manifest schema '$schema' is not $SCHEMA")
            val version = root.opt("schema_version")?.int() ?: SCHEMA_VERSION
            if (version > SCHEMA_VERSION) {
                throw ModelFileException("manifest schema_version $version is newer than this app reads ($SCHEMA_VERSION); update the app")
            }
            val classes = root["classes"].list().map { it.string() }
            if (classes.isEmpty()) throw ModelFileException("manifest: classes is empty")
            val model = root.opt("model")
            val numClasses = model?.opt("num_classes")?.int()
            if (numClasses != null && numClasses != classes.size) {
                throw ModelFileException("manifest: model.num_classes $numClasses but ${classes.size} class names")
            }

            val inp = root["input"]
            val inputSize = inp["input_size"].int()
            val cropPct = inp.opt("crop_pct")?.double() ?: 1.0
            // timm's rule, as edge_fgic.data.transforms.PreprocessConfig.resize_size, when an older manifest lacks it
            val resizeSize = inp.opt("resize_size")?.int() ?: Math.floor(inputSize / cropPct).toInt()
            if (inputSize <= 0 || resizeSize < inputSize) {
                throw ModelFileException("manifest: resize_size $resizeSize must be >= input_size $inputSize > 0")
            }
            val layout = inp.opt("layout")?.string() ?: "NHWC"
            if (layout != "NHWC") throw ModelFileException("manifest: layout $layout; the app feeds NHWC (export with --target tflite)")
            val order = inp.opt("channel_order")?.string() ?: "RGB"
            if (order != "RGB") throw ModelFileException("manifest: channel_order $order; the app feeds RGB")
            val interpolation = inp.opt("interpolation")?.string() ?: "bicubic"
            if (interpolation !in INTERPOLATIONS) {
                throw ModelFileException("manifest: interpolation '$interpolation' is not one of $INTERPOLATIONS")
            }
            val mean = triple(inp["mean"])
            val std = triple(inp["std"])
            if (std.any { it <= 0.0 }) throw ModelFileException("manifest: input.std must be > 0")

            // quantization.io holds what the interpreter reported at export time: it wins over input/output.dtype
            // (the exporter writes output.dtype "float32" even for int8-output models)
            val io = root.opt("quantization")?.opt("io")
            val input = tensorIo("input", io?.opt("input"), inp.opt("dtype")?.string())
            val output = tensorIo("output", io?.opt("output"), root.opt("output")?.opt("dtype")?.string())

            return ModelSpec(
                modelName = model?.opt("name")?.string() ?: "model",
                precision = root.opt("artifact")?.opt("precision")?.string() ?: input.dtype,
                classes = classes, inputSize = inputSize, resizeSize = resizeSize, cropPct = cropPct,
                interpolation = interpolation, mean = mean, std = std, layout = layout, input = input, output = output
            )
        }

        private fun triple(n: Node): List<Double> {
            val v = n.list().map { it.double() }
            if (v.size != 3) throw ModelFileException("${n.path} must hold 3 numbers, got ${v.size}")
            return v
        }

        private fun tensorIo(what: String, q: Node?, fallbackDtype: String?): TensorIo {
            val dtype = q?.opt("dtype")?.string() ?: fallbackDtype ?: "float32"
            if (dtype !in DTYPES) throw ModelFileException("manifest: $what dtype '$dtype' is not one of $DTYPES")
            if (dtype == "float32") return TensorIo(dtype)
            if (q == null) throw ModelFileException("manifest: $what is $dtype but quantization.io.$what (scale, zero_point) is missing")
            val scale = q["scale"].double()
            if (!(scale > 0.0)) throw ModelFileException("manifest: quantization.io.$what.scale must be > 0")
            return TensorIo(dtype, scale, q["zero_point"].int())
        }
    }
}

/** A JSON value with its path, so a wrong manifest says which field is wrong. */
internal class Node(private val value: Any?, val path: String) {
    operator fun get(key: String): Node = opt(key) ?: throw ModelFileException("$path.$key is missing")

    /** The member [key], or null when absent or JSON null. */
    fun opt(key: String): Node? {
        val map = value as? Map<*, *> ?: throw ModelFileException("$path must be an object")
        val v = map[key] ?: return null
        return Node(v, "$path.$key")
    }

    fun string(): String = value as? String ?: throw ModelFileException("$path must be a string")

    fun double(): Double = value as? Double ?: throw ModelFileException("$path must be a number")

    fun int(): Int {
        val d = double()
        if (d != Math.rint(d) || Math.abs(d) > Int.MAX_VALUE) throw ModelFileException("$path must be an integer")
        return d.toInt()
    }

    fun list(): List<Node> {
        val l = value as? List<*> ?: throw ModelFileException("$path must be a list")
        return l.mapIndexed { i, v -> Node(v, "$path[$i]") }
    }
}
