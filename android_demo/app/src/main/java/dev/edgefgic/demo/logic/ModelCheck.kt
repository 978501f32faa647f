package dev.edgefgic.demo.logic

import java.nio.ByteBuffer
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction
import java.security.MessageDigest

/**
 * The model the app will run, after [ModelCheck.load]: its [spec]; where the manifest came from ([source]: the
 * sidecar's file name, or [ModelCheck.EMBEDDED]); a one-line [summary] for the log; and a one-line [note] for the
 * screen when something is worth knowing but is no error (null otherwise).
 */
class CheckedModel(val spec: ModelSpec, val source: String, val summary: String, val note: String?)

/**
 * The artifact checks of edge-fgic's Python runners (edge_fgic/runtime/base.py `Runner._check_bytes` and
 * `Runner._check_manifest`), done before an interpreter sees the file:
 *
 * 1. with a sidecar (the `X.tflite.json` that `edge-fgic export --target tflite` writes beside `X.tflite`, copied
 *    as `model.tflite.json`): the model's bytes have the SHA-256 that the sidecar's `files.sha256` records for
 *    the entry point `artifact.file` (the file being loaded, whatever it is called now: a renamed artifact keeps
 *    its manifest), and the sidecar agrees with the manifest inside the model on `classes`, `input` and
 *    `artifact`. The sidecar's manifest is then the one used, as Python's `read_manifest` prefers it;
 * 2. without a sidecar: the manifest inside the model is used, and [CheckedModel.note] says so;
 * 3. either way the manifest fits the model's own tensors, read from the flatbuffer ([TfliteFile.ioTensors]):
 *    class count vs the output's last dimension, NHWC layout and H/W vs `input_size`, dtype, int8/uint8
 *    scale/zero-point ([ModelSpec.mismatches]).
 *
 * Every refusal is a [ModelFileException] whose message is one line naming the file and the fix.
 * One stricter rule than Python's: a sidecar that records no SHA-256 at all is refused (it cannot vouch for the
 * bytes), where Python skips the byte check.
 */
object ModelCheck {
    const val EMBEDDED = "embedded"
    /** The manifest sections a sidecar must share with the copy inside the model (as `_check_manifest`). */
    val COMPARED = listOf("classes", "input", "artifact")
    private const val REEXPORT = "re-export it (`edge-fgic export --target tflite`) and copy the .tflite and its .json again"
    private val FIXES = listOf("re-export", "update the app", "copy the sidecar")

    /**
     * Checks [model] (the bytes of [modelName], e.g. the memory-mapped asset) and its [sidecar] (the bytes of
     * [sidecarName]; null when there is none) and returns what to run; throws [ModelFileException] otherwise.
     */
    fun load(modelName: String, model: ByteBuffer, sidecar: ByteArray?, sidecarName: String = "$modelName.json"): CheckedModel {
        val side = if (sidecar == null) null else parseSidecar(modelName, sidecarName, sidecar)
        val digest = if (side != null) checkBytes(modelName, model, sidecarName, side) else null
        val inside = embedded(modelName, model, side != null)
        if (side != null && inside != null) checkAgreement(modelName, sidecarName, side, inside)
        val tree: Any? = side ?: inside
        val spec = try {
            ModelSpec.fromTree(tree)
        } catch (e: ModelFileException) {
            throw ModelFileException(
                if (side != null) withFix("$sidecarName: ${e.message}", sidecarFix(modelName)) else withFix("$modelName: ${e.message}", REEXPORT)
            )
        }
        val io = try {
            TfliteFile.ioTensors(model)
        } catch (e: ModelFileException) {
            throw ModelFileException(withFix("$modelName: ${e.message}", REEXPORT))
        }
        checkTensors(modelName, if (side != null) sidecarName else "the manifest inside $modelName", spec, io)

        if (side == null) {
            return CheckedModel(spec, EMBEDDED, "$modelName: manifest inside the model; it fits the model's tensors",
                "no $sidecarName: using the manifest inside $modelName (bytes not checked against the export's sha256; copy the sidecar too, see README)")
        }
        val entry = entryPoint(side, modelName)
        val agree = if (inside != null) "sidecar, embedded manifest and tensors agree" else "sidecar and tensors agree"
        val summary = "$modelName: sha256 ${digest!!.take(12)}… matches $sidecarName (exported as $entry); $agree"
        val note = if (inside == null) "$modelName carries no manifest of its own: using $sidecarName (sha256 checked)" else null
        return CheckedModel(spec, sidecarName, summary, note)
    }

    /**
     * The manifest fits the model's own tensors ([io]: from [TfliteFile.ioTensors], or from the interpreter once
     * it is created); [where] names the manifest checked. Throws one line listing every disagreement.
     */
    fun checkTensors(modelName: String, where: String, spec: ModelSpec, io: IoTensors) {
        val problems = ArrayList<String>()
        if (io.inputCount != 1) problems.add("the app feeds one image, the model takes ${io.inputCount} inputs")
        problems.addAll(spec.mismatches(io.input, io.output))
        if (problems.isNotEmpty()) {
            throw ModelFileException("$modelName: $where does not fit the model's own tensors: ${problems.joinToString("; ")}; " +
                "use the export's own manifest: $REEXPORT")
        }
    }

    /** Lower-case hex SHA-256 of the whole buffer, position 0 to its limit (what `sha256sum` prints for the file). */
    fun sha256(model: ByteBuffer): String {
        val md = MessageDigest.getInstance("SHA-256")
        val all = model.duplicate()
        all.position(0)
        md.update(all)
        val hex = "0123456789abcdef"
        val sb = StringBuilder(64)
        for (b in md.digest()) {
            val v = b.toInt() and 0xFF
            sb.append(hex[v shr 4]).append(hex[v and 0xF])
        }
        return sb.toString()
    }

    /** The first line of an exception's text, for the screen: never a stack trace, at most [width] characters. */
    fun oneLine(text: String?, width: Int = 200): String {
        val line = (text ?: "").lineSequence().map { it.trim() }.firstOrNull { it.isNotEmpty() } ?: "unknown error"
        return if (line.length <= width) line else line.take(width - 1) + "…"
    }

    /** Where two manifest sections first differ, as `where: sidecar X, inside Y` (base.py `_difference`). */
    fun difference(side: Any?, inside: Any?): String {
        if (side is Map<*, *> && inside is Map<*, *>) {
            val keys = (side.keys + inside.keys).map { it.toString() }.toSortedSet()
            for (k in keys) {
                if (side[k] != inside[k]) return "$k: sidecar ${short(side[k])}, inside ${short(inside[k])}"
            }
        }
        if (side is List<*> && inside is List<*>) {
            if (side.size != inside.size) return "sidecar ${side.size} entries, inside ${inside.size}"
            val i = side.indices.firstOrNull { side[it] != inside[it] }
            if (i != null) return "entry $i: sidecar ${short(side[i])}, inside ${short(inside[i])}"
        }
        return "sidecar ${short(side)}, inside ${short(inside)}"
    }

    /** A JSON value as compact text, cut to [width] characters. */
    fun short(value: Any?, width: Int = 40): String {
        val text = text(value)
        return if (text.length <= width) text else text.take(width - 1) + "…"
    }

    private fun text(v: Any?): String = when (v) {
        null -> "null"
        is String -> "\"" + v.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\""
        is Double -> if (v == Math.rint(v) && Math.abs(v) < 1e15) v.toLong().toString() else v.toString()
        is List<*> -> v.joinToString(", ", "[", "]") { text(it) }
        is Map<*, *> -> v.entries.joinToString(", ", "{", "}") { "${text(it.key.toString())}: ${text(it.value)}" }
        else -> v.toString()
    }

    private fun sidecarFix(modelName: String) =
        "copy the sidecar that belongs to this file, delete it to use the manifest inside $modelName, or re-export"

    private fun withFix(message: String, fix: String): String = if (FIXES.any { message.contains(it) }) message else "$message; $fix"

    private fun entryPoint(side: Map<String, Any?>, modelName: String): String =
        ((side["artifact"] as? Map<*, *>)?.get("file") as? String)?.takeIf { it.isNotEmpty() } ?: modelName

    private fun parseSidecar(modelName: String, sidecarName: String, bytes: ByteArray): Map<String, Any?> {
        val text = try {
            Charsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString()
        } catch (e: CharacterCodingException) {
            throw ModelFileException("$sidecarName: not a valid manifest (not UTF-8 text); ${sidecarFix(modelName)}")
        }
        val tree = try {
            Json.parse(text)
        } catch (e: JsonException) {
            throw ModelFileException("$sidecarName: not a valid manifest (${e.message}); ${sidecarFix(modelName)}")
        }
        val map = tree as? Map<*, *> ?: throw ModelFileException("$sidecarName: not a valid manifest (not a JSON object); ${sidecarFix(modelName)}")
        val out = LinkedHashMap<String, Any?>()
        for ((k, v) in map) out[k.toString()] = v
        return out
    }

    /** `_check_bytes`: returns the model's SHA-256 once it matches the sidecar's record for the entry point. */
    private fun checkBytes(modelName: String, model: ByteBuffer, sidecarName: String, side: Map<String, Any?>): String {
        val entry = entryPoint(side, modelName)
        val sha = ((side["files"] as? Map<*, *>)?.get("sha256") as? Map<*, *>)
        if (sha == null || sha.isEmpty()) {
            throw ModelFileException("$sidecarName: records no sha256 for $entry (files.sha256), so it cannot vouch for " +
                "$modelName's bytes; ${sidecarFix(modelName)}")
        }
        val got = sha256(model)
        for ((key, want) in sha) {
            val name = key.toString()
            // the entry point is this file whatever it is called now; anything else would be a companion file,
            // which a TFLite export does not have and the app does not ship
            if (name != entry && name != modelName) {
                throw ModelFileException("$sidecarName: lists $name beside $entry, which the app does not ship " +
                    "(a TFLite export is one file); copy the sidecar that belongs to this file, or re-export")
            }
            val w = want as? String
                ?: throw ModelFileException("$sidecarName: files.sha256[\"$name\"] is not a hash string; ${sidecarFix(modelName)}")
            if (got != w) {
                throw ModelFileException("$modelName: its bytes differ from $sidecarName (sha256 ${got.take(12)}… vs " +
                    "${w.take(12)}… recorded at export for $entry): the file changed after export or the sidecar belongs to " +
                    "another export; re-export it, or copy the sidecar that belongs to this file")
            }
        }
        return got
    }

    /** The manifest inside the model as a JSON tree; null when there is none but a sidecar speaks for the file. */
    private fun embedded(modelName: String, model: ByteBuffer, hasSidecar: Boolean): Any? {
        val text = try {
            TfliteFile.manifestJson(model)
        } catch (e: NotAnEdgeFgicExport) {
            if (hasSidecar) return null // its bytes are the ones the sidecar hashed: the sidecar speaks for it
            throw ModelFileException("$modelName: ${e.message}")
        } catch (e: ModelFileException) {
            throw ModelFileException(withFix("$modelName: ${e.message}", REEXPORT))
        }
        return try {
            ModelSpec.parse(text)
        } catch (e: ModelFileException) {
            throw ModelFileException(withFix("$modelName: ${e.message}", REEXPORT))
        }
    }

    /** `_check_manifest`'s first half: the sidecar and the manifest inside the model describe the same export. */
    private fun checkAgreement(modelName: String, sidecarName: String, side: Map<String, Any?>, inside: Any?) {
        val map = inside as? Map<*, *>
        for (key in COMPARED) {
            val a = side[key]
            val b = map?.get(key)
            if (a != b) {
                throw ModelFileException("$modelName: $sidecarName and the manifest inside the model disagree on $key " +
                    "(${difference(a, b)}): the sidecar was edited or belongs to another export (or a tool that derived " +
                    "this file from another export kept that export's manifest inside); ${sidecarFix(modelName)}")
            }
        }
    }
}
