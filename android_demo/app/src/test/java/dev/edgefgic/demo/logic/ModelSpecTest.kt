package dev.edgefgic.demo.logic

import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File
import java.nio.ByteBuffer

class ModelSpecTest {
    private fun expectedSpec(r: Fixtures.Record) = ModelSpec(
        modelName = r.one("model_name"), precision = r.one("precision"), classes = r.list("classes"),
        inputSize = r.int("input_size"), resizeSize = r.int("resize_size"), cropPct = r.double("crop_pct"),
        interpolation = r.one("interpolation"), mean = r.doubles("mean").toList(), std = r.doubles("std").toList(),
        layout = r.one("layout"),
        input = TensorIo(r.one("input_dtype"), r.double("input_scale"), r.int("input_zero_point")),
        output = TensorIo(r.one("output_dtype"), r.double("output_scale"), r.int("output_zero_point"))
    )

    private fun tensor(r: Fixtures.Record, which: String) = TensorInfo(
        r.one("${which}_dtype"), r.ints("tensor_${which}_shape").toList(), r.double("${which}_scale"), r.int("${which}_zero_point")
    )

    /** Each .tflite written by the exporter's own code reads back as the spec Python recorded for it. */
    @Test
    fun exportedModelsReadBackAsPythonWroteThem() {
        val models = Fixtures.files("models", ".tflite")
        for (file in models) {
            val r = expectations(file)
            val bytes = ByteBuffer.wrap(file.readBytes())
            if (r.has("error")) {
                val e = assertThrows(file.name, ModelFileException::class.java) { ModelSpec.fromTflite(bytes) }
                assertTrue("${file.name}: ${e.message}", e.message!!.startsWith(r.one("error")))
                // the loader says the same, naming the file (no sidecar here)
                val l = assertThrows(file.name, ModelFileException::class.java) { ModelCheck.load(file.name, bytes, null) }
                assertTrue("${file.name}: ${l.message}", l.message!!.startsWith("${file.name}: ${r.one("error")}"))
                continue
            }
            val spec = ModelSpec.fromTflite(bytes)
            assertEquals(file.name, expectedSpec(r), spec)
            assertEquals(file.name, r.list("metadata_names"), TfliteFile.metadataNames(bytes))
            // the interpreter's own tensors (recorded by Python) are what the app reads from the flatbuffer ...
            val input = tensor(r, "input")
            val output = tensor(r, "output")
            assertEquals(file.name, IoTensors(input, output, 1, 1), TfliteFile.ioTensors(bytes))
            // ... they agree with the manifest, and the loader takes the file as it is (no sidecar: a note says so)
            assertEquals(file.name, emptyList<String>(), spec.mismatches(input, output))
            val loaded = ModelCheck.load(file.name, bytes, null)
            assertEquals(file.name, spec, loaded.spec)
            assertEquals(ModelCheck.EMBEDDED, loaded.source)
            assertTrue(loaded.note!!, loaded.note!!.startsWith("no ${file.name}.json: using the manifest inside ${file.name}"))
            // ... and a disagreement is caught
            assertEquals(1, spec.mismatches(input, output.copy(shape = listOf(1, spec.classes.size + 1))).size)
            if (spec.input.quantized) assertEquals(1, spec.mismatches(input.copy(zeroPoint = input.zeroPoint + 1), output).size)
        }
        Fixtures.report("models", models.size)
    }

    /** A cut-off file either still yields the same spec or fails with a one-line ModelFileException. */
    @Test
    fun truncatedFilesFailCleanly() {
        for (file in Fixtures.files("models", ".tflite").filter { !expectations(it).has("error") }) {
            val full = file.readBytes()
            val spec = ModelSpec.fromTflite(ByteBuffer.wrap(full))
            for (cut in listOf(0, 4, 8, 12, 64, 256, full.size / 4, full.size / 2, full.size - 1000, full.size - 1)) {
                val part = ByteBuffer.wrap(full.copyOf(Math.max(0, cut)))
                try {
                    assertEquals("${file.name} cut at $cut", spec, ModelSpec.fromTflite(part))
                } catch (e: ModelFileException) {
                    assertTrue(e.message!!, !e.message!!.contains('\n'))
                }
                try { // the whole load: the flatbuffer's tensors are read too
                    assertEquals("${file.name} cut at $cut", spec, ModelCheck.load(file.name, part, null).spec)
                } catch (e: ModelFileException) {
                    assertTrue(e.message!!, !e.message!!.contains('\n') && e.message!!.startsWith("${file.name}: "))
                }
            }
        }
    }

    private fun expectations(tflite: File) = Fixtures.records(File(tflite.path.removeSuffix(".tflite") + ".expected.tsv")).single()

    private fun manifest(input: String, quantization: String = "null", extra: String = "") = """
        {"schema": "edge-fgic/manifest", "schema_version": 1, "artifact": {"precision": "int8"},
         "model": {"name": "m", "num_classes": 2}, "classes": ["a", "b"],
         "input": {$input}, "output": {"dtype": "float32"}, "quantization": $quantization $extra}
    """

    private val goodInput = """"input_size": 4, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "layout": "NHWC", "dtype": "float32""""

    @Test
    fun manifestDefaultsFollowTheExporter() {
        val spec = ModelSpec.fromManifest(manifest("$goodInput, \"crop_pct\": 0.875"))
        assertEquals(4, spec.resizeSize) // floor(4 / 0.875) = 4, timm's rule when resize_size is absent
        assertEquals("bicubic", spec.interpolation)
        assertEquals(TensorIo("float32"), spec.input)
        assertEquals("m (int8)", spec.title)
    }

    @Test
    fun wrongManifestsSayWhatIsWrong() {
        val cases = listOf(
            manifest(goodInput.replace("NHWC", "NCHW")) to "manifest: layout NCHW",
            manifest(goodInput.replace("\"float32\"", "\"int8\"")) to "manifest: input is int8 but quantization.io.input",
            manifest(goodInput.replace("[0.25, 0.25, 0.25]", "[0.25, 0.25]")) to "manifest.input.std must hold 3 numbers",
            manifest(goodInput, "{\"io\": {\"input\": {\"dtype\": \"int8\", \"scale\": 0, \"zero_point\": 0}}}")
                to "manifest: quantization.io.input.scale must be > 0",
            manifest(goodInput.replace("\"input_size\": 4", "\"input_size\": 4.5")) to "manifest.input.input_size must be an integer",
            manifest(goodInput, extra = ", \"schema_version\": 2") to "manifest schema_version 2 is newer",
            manifest(goodInput.replace("\"input_size\": 4,", "")) to "manifest.input.input_size is missing",
            manifest("$goodInput, \"interpolation\": \"lanczos\"") to "manifest: interpolation 'lanczos'",
            "[1, 2]" to "manifest must be an object",
            "{\"schema\": \"other\"}" to "manifest schema 'other'"
        )
        for ((json, message) in cases) {
            val e = assertThrows(message, IllegalArgumentException::class.java) { ModelSpec.fromManifest(json) }
            assertTrue("expected '$message', got '${e.message}'", e.message!!.startsWith(message))
        }
    }

    @Test
    fun notATfliteFileIsNamedAsSuch() {
        val png = ByteBuffer.wrap(byteArrayOf(0x89.toByte(), 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0))
        val e = assertThrows(ModelFileException::class.java) { ModelSpec.fromTflite(png) }
        assertEquals("not a TFLite model (no TFL3 file identifier)", e.message)
    }
}
