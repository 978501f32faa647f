package dev.edgefgic.demo.logic

import java.nio.ByteBuffer
import java.nio.ByteOrder

/** The model file cannot be used; the message is one line meant for the user. */
open class ModelFileException(message: String) : IllegalArgumentException(message)

/** A valid .tflite without our manifest: not something `edge-fgic export` wrote. */
class NotAnEdgeFgicExport : ModelFileException(
    "not an edge-fgic export: re-export with `edge-fgic export --target tflite`"
)

/**
 * One FlatBuffers table: little-endian, 32-bit offsets, 16-bit vtable entries (the FlatBuffers binary format).
 * Reads absolute positions of a ByteBuffer, so Android can hand over the memory-mapped asset uncopied.
 */
internal class FbTable(private val bb: ByteBuffer, private val pos: Int) {
    private val vtable = pos - bb.getInt(pos)
    private val vtableSize = bb.getShort(vtable).toInt() and 0xFFFF

    /** Offset of field [slot] from the table start; 0 when absent (old writer or default value). */
    private fun field(slot: Int): Int {
        val at = 4 + 2 * slot
        return if (at < vtableSize) bb.getShort(vtable + at).toInt() and 0xFFFF else 0
    }

    private fun target(slot: Int): Int? {
        val off = field(slot)
        return if (off == 0) null else pos + off + bb.getInt(pos + off)
    }

    fun uint32(slot: Int): Long {
        val off = field(slot)
        return if (off == 0) 0L else bb.getInt(pos + off).toLong() and 0xFFFFFFFFL
    }

    fun uint64(slot: Int): Long {
        val off = field(slot)
        return if (off == 0) 0L else bb.getLong(pos + off) // a file offset; > 2^63 is not a real file
    }

    /** A one-byte scalar (a TensorType, a bool); [default] when absent (writers omit default values). */
    fun int8(slot: Int, default: Int = 0): Int {
        val off = field(slot)
        return if (off == 0) default else bb.get(pos + off).toInt()
    }

    /** (first byte, length) of a vector of [elementSize]-byte elements or a string; null when absent. */
    fun vector(slot: Int, elementSize: Int = 1): IntArray? {
        val at = target(slot) ?: return null
        val n = bb.getInt(at)
        if (n < 0 || at + 4 + n.toLong() * elementSize > bb.limit()) throw IndexOutOfBoundsException("vector past the end")
        return intArrayOf(at + 4, n)
    }

    /** A [int] vector; empty when absent. */
    fun ints(slot: Int): List<Int> {
        val v = vector(slot, 4) ?: return emptyList()
        return (0 until v[1]).map { i -> bb.getInt(v[0] + 4 * i) }
    }

    /** A [float] vector; empty when absent. */
    fun floats(slot: Int): List<Float> {
        val v = vector(slot, 4) ?: return emptyList()
        return (0 until v[1]).map { i -> bb.getFloat(v[0] + 4 * i) }
    }

    /** A [long] vector; empty when absent. */
    fun longs(slot: Int): List<Long> {
        val v = vector(slot, 8) ?: return emptyList()
        return (0 until v[1]).map { i -> bb.getLong(v[0] + 8 * i) }
    }

    /** A sub-table; null when absent. */
    fun table(slot: Int): FbTable? = target(slot)?.let { FbTable(bb, it) }

    fun string(slot: Int): String? {
        val v = vector(slot) ?: return null
        return String(bytes(bb, v[0], v[1]), Charsets.UTF_8)
    }

    fun tables(slot: Int): List<FbTable> {
        val v = vector(slot, 4) ?: return emptyList()
        return (0 until v[1]).map { i -> val at = v[0] + 4 * i; FbTable(bb, at + bb.getInt(at)) }
    }
}

internal fun bytes(bb: ByteBuffer, start: Int, length: Int): ByteArray {
    val out = ByteArray(length)
    for (i in 0 until length) out[i] = bb.get(start + i)
    return out
}

/** The model's own view of its input and output: subgraph 0's first input/output tensor, as the interpreter runs it. */
data class IoTensors(val input: TensorInfo, val output: TensorInfo, val inputCount: Int, val outputCount: Int)

/**
 * Reads `Model.metadata` entries of a .tflite (TFLite schema.fbs: Model fields version, operator_codes,
 * subgraphs, description, buffers, metadata_buffer, metadata, signature_defs; Metadata: name, buffer;
 * Buffer: data, offset, size). edge-fgic's exporter stores its JSON manifest under [MANIFEST_KEY]
 * (edge_fgic/manifest/tflite_writer.py); the same file also carries TFLITE_METADATA and a labels zip,
 * which the manifest makes redundant here.
 *
 * Also reads the model's I/O tensors ([ioTensors]: SubGraph tensors, inputs, outputs; Tensor shape, type,
 * quantization; QuantizationParameters scale, zero_point), so the manifest is checked against the model
 * itself before an interpreter is created.
 */
object TfliteFile {
    const val MANIFEST_KEY = "edge_fgic_manifest"
    private const val MODEL_SUBGRAPHS = 2
    private const val MODEL_BUFFERS = 4
    private const val MODEL_METADATA = 6
    private const val METADATA_NAME = 0
    private const val METADATA_BUFFER = 1
    private const val BUFFER_DATA = 0
    private const val BUFFER_OFFSET = 1
    private const val BUFFER_SIZE = 2
    private const val SUBGRAPH_TENSORS = 0
    private const val SUBGRAPH_INPUTS = 1
    private const val SUBGRAPH_OUTPUTS = 2
    private const val TENSOR_SHAPE = 0
    private const val TENSOR_TYPE = 1
    private const val TENSOR_QUANTIZATION = 4
    private const val QUANT_SCALE = 2
    private const val QUANT_ZERO_POINT = 3

    /** schema.fbs `enum TensorType : byte`, by value; names as numpy/the manifest spell them. */
    private val TENSOR_TYPES = listOf(
        "float32", "float16", "int32", "uint8", "int64", "string", "bool", "int16", "complex64", "int8",
        "float64", "complex128", "uint64", "resource", "variant", "uint32", "uint16", "int4", "bfloat16"
    )

    /** The manifest's JSON text; [NotAnEdgeFgicExport] when the model has none. */
    fun manifestJson(model: ByteBuffer): String {
        val data = metadata(model, MANIFEST_KEY) ?: throw NotAnEdgeFgicExport()
        return String(data, Charsets.UTF_8)
    }

    /** Names of the Model.metadata entries, in file order. */
    fun metadataNames(model: ByteBuffer): List<String> = read(model) { root, _ ->
        root.tables(MODEL_METADATA).map { it.string(METADATA_NAME) ?: "" }
    }

    /** Bytes of the first metadata entry called [name], or null. */
    fun metadata(model: ByteBuffer, name: String): ByteArray? = read(model) { root, bb ->
        val entry = root.tables(MODEL_METADATA).firstOrNull { it.string(METADATA_NAME) == name }
        if (entry == null) {
            null
        } else {
            val buffers = root.tables(MODEL_BUFFERS)
            val index = entry.uint32(METADATA_BUFFER)
            if (index >= buffers.size) throw ModelFileException("corrupt .tflite: metadata '$name' points at a missing buffer")
            bufferData(bb, buffers[index.toInt()])
        }
    }

    /**
     * Subgraph 0's first input and output tensor (what `Interpreter.getInputTensor(0)`/`getOutputTensor(0)`
     * report): shape, element type, and the per-tensor scale/zero-point (0.0/0 for an unquantized tensor).
     */
    fun ioTensors(model: ByteBuffer): IoTensors = read(model) { root, _ ->
        val graph = root.tables(MODEL_SUBGRAPHS).firstOrNull() ?: throw ModelFileException("corrupt .tflite: no subgraph")
        val tensors = graph.tables(SUBGRAPH_TENSORS)
        val inputs = graph.ints(SUBGRAPH_INPUTS)
        val outputs = graph.ints(SUBGRAPH_OUTPUTS)
        if (inputs.isEmpty() || outputs.isEmpty()) throw ModelFileException("corrupt .tflite: the model has no input or no output tensor")
        IoTensors(tensorInfo(tensors, inputs[0]), tensorInfo(tensors, outputs[0]), inputs.size, outputs.size)
    }

    private fun tensorInfo(tensors: List<FbTable>, index: Int): TensorInfo {
        if (index < 0 || index >= tensors.size) throw ModelFileException("corrupt .tflite: I/O tensor $index of ${tensors.size}")
        val t = tensors[index]
        val type = t.int8(TENSOR_TYPE)
        val q = t.table(TENSOR_QUANTIZATION)
        val scale = q?.floats(QUANT_SCALE)?.firstOrNull() ?: 0f
        val zeroPoint = q?.longs(QUANT_ZERO_POINT)?.firstOrNull() ?: 0L
        return TensorInfo(TENSOR_TYPES.getOrElse(type) { "type$type" }, t.ints(TENSOR_SHAPE), scale.toDouble(), zeroPoint.toInt())
    }

    private fun bufferData(bb: ByteBuffer, buffer: FbTable): ByteArray {
        // schema.fbs: offset/size place the bytes outside the flatbuffer (models over 2 GB); "only valid if > 1"
        val offset = buffer.uint64(BUFFER_OFFSET)
        if (offset > 1) {
            val size = buffer.uint64(BUFFER_SIZE)
            if (size < 0 || offset + size > bb.limit()) {
                throw ModelFileException("corrupt .tflite: a buffer points past the end of the file")
            }
            return bytes(bb, offset.toInt(), size.toInt())
        }
        val v = buffer.vector(BUFFER_DATA) ?: return ByteArray(0)
        return bytes(bb, v[0], v[1])
    }

    private fun <T> read(model: ByteBuffer, body: (FbTable, ByteBuffer) -> T): T {
        val bb = model.duplicate().order(ByteOrder.LITTLE_ENDIAN) // duplicate: the caller's order/position stay
        if (bb.limit() < 8 || bb.get(4).toInt() != 0x54 || bb.get(5).toInt() != 0x46 || // "TFL3" at bytes 4..7
            bb.get(6).toInt() != 0x4C || bb.get(7).toInt() != 0x33) {
            throw ModelFileException("not a TFLite model (no TFL3 file identifier)")
        }
        try {
            return body(FbTable(bb, bb.getInt(0)), bb)
        } catch (e: IndexOutOfBoundsException) { // truncated or corrupt: an offset points outside the file
            throw ModelFileException("corrupt .tflite: ${e.message ?: "an offset points outside the file"}")
        }
    }
}
