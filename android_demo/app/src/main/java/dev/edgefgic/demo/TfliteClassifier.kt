package dev.edgefgic.demo

import android.content.Context
import android.os.SystemClock
import dev.edgefgic.demo.logic.CheckedModel
import dev.edgefgic.demo.logic.IoTensors
import dev.edgefgic.demo.logic.ModelCheck
import dev.edgefgic.demo.logic.ModelSpec
import dev.edgefgic.demo.logic.Postprocess
import dev.edgefgic.demo.logic.Preprocessor
import dev.edgefgic.demo.logic.TensorInfo
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import java.io.Closeable
import java.io.FileInputStream
import java.io.FileNotFoundException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/**
 * The model asset, its manifest and a LiteRT interpreter: camera pixels in, class probabilities out.
 * Not thread-safe: the activity calls it from its single analysis thread.
 */
class TfliteClassifier private constructor(private val interpreter: Interpreter, val checked: CheckedModel) : Closeable {
    val spec: ModelSpec get() = checked.spec

    class Result(val probabilities: FloatArray, val inferenceMs: Double)

    private val preprocessor = Preprocessor(spec)
    private val floats = FloatArray(preprocessor.elements)
    private val quantized = ByteArray(preprocessor.elements)
    private val input = ByteBuffer.allocateDirect(preprocessor.elements * spec.input.bytesPerElement).order(ByteOrder.nativeOrder())
    private val output = ByteBuffer.allocateDirect(spec.classes.size * spec.output.bytesPerElement).order(ByteOrder.nativeOrder())

    fun classify(argb: IntArray, width: Int, height: Int, rotationDegrees: Int): Result {
        input.rewind()
        if (spec.input.quantized) {
            input.put(preprocessor.toQuantized(argb, width, height, rotationDegrees, quantized))
        } else {
            input.asFloatBuffer().put(preprocessor.toFloats(argb, width, height, rotationDegrees, floats))
        }
        input.rewind()
        output.rewind()
        val t0 = SystemClock.elapsedRealtimeNanos()
        interpreter.run(input, output)
        val inferenceMs = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6
        output.rewind()
        val logits = if (spec.output.quantized) {
            val raw = ByteArray(spec.classes.size)
            output.get(raw)
            Postprocess.dequantize(raw, spec.output)
        } else {
            FloatArray(spec.classes.size).also { output.asFloatBuffer().get(it) }
        }
        return Result(Postprocess.softmax(logits), inferenceMs)
    }

    override fun close() = interpreter.close()

    companion object {
        const val ASSET = "model.tflite"
        /** The export's sidecar (`X.tflite.json`), copied beside the model; optional. */
        const val SIDECAR = "model.tflite.json"

        /**
         * Throws FileNotFoundException without the model asset, ModelFileException (one line naming the file and
         * the fix) for a file that is not the export its manifest describes or that the app cannot feed.
         * Every check runs before the interpreter sees the bytes (ModelCheck: sidecar sha256, sidecar vs embedded
         * manifest, manifest vs the flatbuffer's tensors); the interpreter's own tensors are checked once more.
         */
        fun fromAsset(context: Context, threads: Int = 4): TfliteClassifier {
            val model = map(context, ASSET)
            val checked = ModelCheck.load(ASSET, model, readOrNull(context, SIDECAR), SIDECAR)
            val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(threads))
            try {
                val where = if (checked.source == ModelCheck.EMBEDDED) "the manifest inside $ASSET" else checked.source
                val io = IoTensors(info(interpreter.getInputTensor(0)), info(interpreter.getOutputTensor(0)),
                                   interpreter.inputTensorCount, interpreter.outputTensorCount)
                ModelCheck.checkTensors(ASSET, where, checked.spec, io)
            } catch (e: Exception) {
                interpreter.close()
                throw e
            }
            return TfliteClassifier(interpreter, checked)
        }

        /** The whole asset, or null when the APK has none by that name. */
        private fun readOrNull(context: Context, name: String): ByteArray? =
            try {
                context.assets.open(name).use { it.readBytes() }
            } catch (e: FileNotFoundException) {
                null
            }

        /** Memory-maps the asset (no copy on the Java heap); it must be stored uncompressed: noCompress "tflite". */
        private fun map(context: Context, name: String): MappedByteBuffer =
            context.assets.openFd(name).use { fd ->
                FileInputStream(fd.fileDescriptor).channel.use { ch ->
                    ch.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
                }
            }

        private fun info(t: Tensor): TensorInfo {
            val dtype = when (t.dataType()) {
                DataType.FLOAT32 -> "float32"
                DataType.INT8 -> "int8"
                DataType.UINT8 -> "uint8"
                else -> t.dataType().name.lowercase() // as TfliteFile names them: int32, int64, ...
            }
            val q = t.quantizationParams()
            return TensorInfo(dtype, t.shape().toList(), q.scale.toDouble(), q.zeroPoint)
        }
    }
}
