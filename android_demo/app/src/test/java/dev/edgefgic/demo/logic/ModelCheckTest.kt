package dev.edgefgic.demo.logic

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File
import java.nio.ByteBuffer

class ModelCheckTest {
    private fun refusal(what: String, body: () -> Unit): String {
        val e = assertThrows(what, ModelFileException::class.java) { body() }
        val m = e.message!!
        assertFalse("$what: more than one line: $m", m.contains('\n'))
        return m
    }

    /**
     * Each folder is an assets folder as the user fills it (tests/test_android_demo.py: exported with the project's
     * own manifest code, then copied, renamed, edited or mixed up): it loads, or is refused with one line naming
     * the file, the cause and the fix, exactly as the Python side records.
     */
    @Test
    fun artifactsAreCheckedBeforeTheyRun() {
        val cases = Fixtures.dirs("artifacts")
        for (dir in cases) {
            val r = Fixtures.records(File(dir, "expected.tsv")).single()
            val model = File(dir, r.one("model"))
            val side = File(dir, model.name + ".json")
            val bytes = ByteBuffer.wrap(model.readBytes())
            val sidecar = if (side.exists()) side.readBytes() else null
            val what = "${dir.name}/${model.name}"
            if (r.one("outcome") == "refused") {
                val m = refusal(what) { ModelCheck.load(model.name, bytes, sidecar, side.name) }
                assertTrue("$what: '$m' does not start with '${r.one("file")}: '", m.startsWith(r.one("file") + ": "))
                for (s in r.list("contains")) assertTrue("$what: '$s' is not in '$m'", m.contains(s))
            } else {
                assertEquals("$what: outcome", "accepted", r.one("outcome"))
                val c = ModelCheck.load(model.name, bytes, sidecar, side.name)
                assertEquals("$what: manifest source", r.one("source"), c.source)
                assertEquals("$what: classes", r.list("classes"), c.spec.classes)
                assertEquals("$what: input size", r.int("input_size"), c.spec.inputSize)
                assertFalse(c.summary, c.summary.contains('\n'))
                if (r.has("note")) {
                    val note = c.note
                    assertNotNull("$what: no note", note)
                    assertFalse(note!!, note.contains('\n'))
                    for (s in r.list("note")) assertTrue("$what: '$s' is not in the note '$note'", note.contains(s))
                } else {
                    assertNull("$what: unexpected note", c.note)
                }
            }
        }
        Fixtures.report("artifacts", cases.size)
    }

    // ---- without fixtures: hand-computed values

    @Test
    fun sha256CoversTheWholeBuffer() {
        val abc = ByteBuffer.wrap("abc".toByteArray(Charsets.US_ASCII))
        abc.position(2) // the caller's position does not matter: the file is hashed from its first byte
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", ModelCheck.sha256(abc))
        assertEquals(2, abc.position())
        assertEquals("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", ModelCheck.sha256(ByteBuffer.allocate(0)))
    }

    private val model = ByteBuffer.wrap(ByteArray(32) { it.toByte() }) // hashed before anything parses it
    private val modelSha = "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"

    private fun sidecar(files: String, file: String = "student-int8.tflite") =
        """{"artifact": {"file": "$file", "target": "tflite", "precision": "int8"}, "files": $files}""".toByteArray()

    @Test
    fun sidecarRefusalsNameTheFileAndTheFix() {
        assertEquals(modelSha, ModelCheck.sha256(model))
        val bad = "0123456789ab" + "0".repeat(52)
        val cases = listOf(
            sidecar("""{"sha256": {"student-int8.tflite": "$bad"}}""") to listOf(
                "model.tflite: its bytes differ from model.tflite.json (sha256 630dcd2966c4… vs 0123456789ab… recorded at " +
                    "export for student-int8.tflite)", "re-export it, or copy the sidecar that belongs to this file"),
            sidecar("""{"sha256": {}}""") to listOf("model.tflite.json: records no sha256 for student-int8.tflite", "copy the sidecar"),
            sidecar("""{"size_bytes": 3}""") to listOf("model.tflite.json: records no sha256", "delete it to use the manifest inside model.tflite"),
            sidecar("""{"sha256": {"student-int8.tflite": "$modelSha", "student-int8.bin": "$modelSha"}}""")
                to listOf("model.tflite.json: lists student-int8.bin beside student-int8.tflite, which the app does not ship"),
            sidecar("""{"sha256": {"student-int8.tflite": 7}}""") to listOf("model.tflite.json: files.sha256[\"student-int8.tflite\"] is not a hash string"),
            "{\"artifact\": ".toByteArray() to listOf("model.tflite.json: not a valid manifest (invalid JSON at offset", "re-export"),
            "[1]".toByteArray() to listOf("model.tflite.json: not a valid manifest (not a JSON object)"),
            byteArrayOf(0x7B, 0xFF.toByte(), 0x7D) to listOf("model.tflite.json: not a valid manifest (not UTF-8 text)")
        )
        for ((json, parts) in cases) {
            val m = refusal(parts[0]) { ModelCheck.load("model.tflite", model, json, "model.tflite.json") }
            for (p in parts) assertTrue("'$p' is not in '$m'", m.contains(p))
        }
        // the hash matches (the entry point is the loaded file whatever it is called): the next check reads the model
        val m = refusal("past the hash") { ModelCheck.load("model.tflite", model, sidecar("""{"sha256": {"student-int8.tflite": "$modelSha"}}"""), "model.tflite.json") }
        assertEquals("model.tflite: not a TFLite model (no TFL3 file identifier); re-export it (`edge-fgic export --target tflite`) " +
            "and copy the .tflite and its .json again", m)
        // without a sidecar the same bytes fail on the model itself, named as such
        assertTrue(refusal("no sidecar") { ModelCheck.load("model.tflite", model, null) }.startsWith("model.tflite: not a TFLite model"))
    }

    private val spec = ModelSpec("m", "int8", listOf("a", "b", "c"), 16, 18, 0.875, "bicubic", listOf(0.5, 0.5, 0.5),
                                 listOf(0.25, 0.25, 0.25), "NHWC", TensorIo("int8", 0.0135, 12), TensorIo("int8", 0.02, -40))
    private val goodIn = TensorInfo("int8", listOf(1, 16, 16, 3), 0.0135, 12)
    private val goodOut = TensorInfo("int8", listOf(1, 3), 0.02, -40)

    @Test
    fun tensorMismatchesNameBothSides() {
        assertEquals(emptyList<String>(), spec.mismatches(goodIn, goodOut))
        val cases = listOf(
            goodIn.copy(shape = listOf(1, 3, 16, 16)) to goodOut to "the manifest says input NHWC [1, 16, 16, 3], the model takes NCHW [1, 3, 16, 16]",
            goodIn.copy(shape = listOf(1, 16, 16)) to goodOut to "the manifest says input NHWC [1, 16, 16, 3], the model takes [1, 16, 16] (not 4-D)",
            goodIn.copy(shape = listOf(1, 16, 16, 1)) to goodOut to "the manifest says 3 input channels (RGB, NHWC), the model takes 1 (shape [1, 16, 16, 1])",
            goodIn.copy(shape = listOf(1, 20, 16, 3)) to goodOut to "the manifest says input 16x16, the model takes 20x16 (shape [1, 20, 16, 3])",
            goodIn.copy(shape = listOf(2, 16, 16, 3)) to goodOut to "the app feeds one image, the model takes a batch of 2 (shape [2, 16, 16, 3])",
            goodIn to goodOut.copy(shape = listOf(1, 4)) to "the manifest names 3 classes, the model outputs 4 (output shape [1, 4])",
            goodIn to goodOut.copy(shape = listOf()) to "the manifest names 3 classes, the model outputs nothing (output shape [])",
            goodIn.copy(dtype = "float32") to goodOut to "the manifest says input dtype int8, the model's is float32",
            goodIn.copy(zeroPoint = 13) to goodOut to "the manifest says input scale/zero-point (0.0135, 12), the model's are (0.0135, 13)",
            goodIn to goodOut.copy(scale = 0.03) to "the manifest says output scale/zero-point (0.02, -40), the model's are (0.03, -40)"
        )
        for ((tensors, message) in cases) assertEquals(listOf(message), spec.mismatches(tensors.first, tensors.second))
        // a scale the model stores as float32 and the manifest prints as the same float32's double is no mismatch
        assertEquals(emptyList<String>(), spec.mismatches(goodIn.copy(scale = 0.0135f.toDouble()), goodOut))

        val m = refusal("two inputs") {
            ModelCheck.checkTensors("model.tflite", "model.tflite.json", spec, IoTensors(goodIn, goodOut.copy(shape = listOf(1, 4)), 2, 1))
        }
        assertEquals("model.tflite: model.tflite.json does not fit the model's own tensors: the app feeds one image, the model " +
            "takes 2 inputs; the manifest names 3 classes, the model outputs 4 (output shape [1, 4]); use the export's own " +
            "manifest: re-export it (`edge-fgic export --target tflite`) and copy the .tflite and its .json again", m)
    }

    @Test
    fun differencesAreShownLikeThePythonSide() {
        assertEquals("entry 0: sidecar \"c\", inside \"a\"", ModelCheck.difference(listOf("c", "b", "a"), listOf("a", "b", "c")))
        assertEquals("sidecar 2 entries, inside 3", ModelCheck.difference(listOf("a", "b"), listOf("a", "b", "c")))
        assertEquals("input_size: sidecar 20, inside 16",
            ModelCheck.difference(mapOf("mean" to listOf(0.5), "input_size" to 20.0), mapOf("input_size" to 16.0, "mean" to listOf(0.5))))
        assertEquals("crop_pct: sidecar null, inside 0.875", ModelCheck.difference(mapOf<String, Any?>(), mapOf("crop_pct" to 0.875)))
        assertEquals("sidecar \"a\", inside null", ModelCheck.difference("a", null))
        assertEquals("[\"0123456789\", \"0123456789\", \"012345678…", ModelCheck.short(listOf("0123456789", "0123456789", "0123456789")))
        assertEquals(40, ModelCheck.short(List(20) { "x" }).length)
    }

    @Test
    fun oneLineKeepsTheFirstLine() {
        assertEquals("Internal error: Cannot create interpreter", ModelCheck.oneLine("\n  Internal error: Cannot create interpreter\n\tat x.y(Z.java:1)\n"))
        assertEquals("unknown error", ModelCheck.oneLine(null))
        assertEquals(10, ModelCheck.oneLine("x".repeat(50), 10).length)
    }

    @Test
    fun overlayCarriesTheNote() {
        val text = Overlay.format(spec, listOf(Prediction(0, "a", 1f)), 1.0, 2.0, "no model.tflite.json: using the manifest inside")
        assertTrue(text, text.endsWith("(median)\nno model.tflite.json: using the manifest inside"))
    }
}
