package dev.edgefgic.demo.logic

/** A malformed JSON text; the message names the character offset. */
class JsonException(message: String) : IllegalArgumentException(message)

/**
 * A small RFC 8259 JSON reader for the model manifest. Android has org.json, a plain JVM does not, and the
 * logic must run in both, so the manifest is parsed here (it is a few kB).
 *
 * Values come back as: object -> Map<String, Any?> (insertion order), array -> List<Any?>, number -> Double,
 * string -> String, true/false -> Boolean, null -> null. Doubles are exact for every number the manifest
 * holds (scales are float32 values printed by Python's repr; integers are small).
 */
object Json {
    fun parse(text: String): Any? {
        val p = Parser(text)
        p.skipSpace()
        val value = p.value(0)
        p.skipSpace()
        if (p.pos != text.length) throw p.error("unexpected text after the value")
        return value
    }

    private const val MAX_DEPTH = 64 // a manifest nests 4 deep; this only stops runaway recursion on garbage

    private class Parser(private val s: String) {
        var pos = 0

        fun error(what: String) = JsonException("invalid JSON at offset $pos: $what")

        fun skipSpace() {
            while (pos < s.length && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r')) pos++
        }

        fun value(depth: Int): Any? {
            if (depth > MAX_DEPTH) throw error("nested deeper than $MAX_DEPTH")
            if (pos >= s.length) throw error("unexpected end of text")
            val c = s[pos]
            return when {
                c == '{' -> obj(depth)
                c == '[' -> array(depth)
                c == '"' -> string()
                // Python's json.dumps writes NaN/Infinity (allow_nan=True), e.g. for a metric it could not compute
                s.startsWith("NaN", pos) -> { pos += 3; Double.NaN }
                s.startsWith("Infinity", pos) -> { pos += 8; Double.POSITIVE_INFINITY }
                s.startsWith("-Infinity", pos) -> { pos += 9; Double.NEGATIVE_INFINITY }
                c == '-' || c in '0'..'9' -> number()
                s.startsWith("true", pos) -> { pos += 4; true }
                s.startsWith("false", pos) -> { pos += 5; false }
                s.startsWith("null", pos) -> { pos += 4; null }
                else -> throw error("unexpected character '$c'")
            }
        }

        private fun expect(c: Char) {
            if (pos >= s.length || s[pos] != c) throw error("expected '$c'")
            pos++
        }

        private fun obj(depth: Int): Map<String, Any?> {
            val out = LinkedHashMap<String, Any?>()
            expect('{')
            skipSpace()
            if (pos < s.length && s[pos] == '}') { pos++; return out }
            while (true) {
                skipSpace()
                if (pos >= s.length || s[pos] != '"') throw error("expected a string key")
                val key = string()
                skipSpace()
                expect(':')
                skipSpace()
                out[key] = value(depth + 1)
                skipSpace()
                if (pos < s.length && s[pos] == ',') { pos++; continue }
                expect('}')
                return out
            }
        }

        private fun array(depth: Int): List<Any?> {
            val out = ArrayList<Any?>()
            expect('[')
            skipSpace()
            if (pos < s.length && s[pos] == ']') { pos++; return out }
            while (true) {
                skipSpace()
                out.add(value(depth + 1))
                skipSpace()
                if (pos < s.length && s[pos] == ',') { pos++; continue }
                expect(']')
                return out
            }
        }

        private fun string(): String {
            expect('"')
            val sb = StringBuilder()
            while (true) {
                if (pos >= s.length) throw error("unterminated string")
                val c = s[pos++]
                when {
                    c == '"' -> return sb.toString()
                    c == '\\' -> {
                        if (pos >= s.length) throw error("unterminated escape")
                        val e = s[pos++]
                        when (e) {
                            '"', '\\', '/' -> sb.append(e)
                            'b' -> sb.append('\b')
                            'f' -> sb.append('\u000C')
                            'n' -> sb.append('\n')
                            'r' -> sb.append('\r')
                            't' -> sb.append('\t')
                            // \uXXXX: one UTF-16 unit; a surrogate pair (Python's ensure_ascii output for
                            // characters beyond the BMP) arrives as two escapes and joins up in the StringBuilder
                            'u' -> {
                                if (pos + 4 > s.length) throw error("short \\u escape")
                                val hex = s.substring(pos, pos + 4)
                                if (!hex.all { it in '0'..'9' || it in 'a'..'f' || it in 'A'..'F' }) {
                                    throw error("bad \\u escape '$hex'")
                                }
                                sb.append(Integer.parseInt(hex, 16).toChar())
                                pos += 4
                            }
                            else -> throw error("bad escape '\\$e'")
                        }
                    }
                    c < ' ' -> throw error("control character in string")
                    else -> sb.append(c)
                }
            }
        }

        private fun number(): Double {
            val start = pos
            if (s[pos] == '-') pos++
            if (pos < s.length && s[pos] == '0') {
                pos++
            } else {
                if (pos >= s.length || s[pos] !in '1'..'9') throw error("bad number")
                while (pos < s.length && s[pos] in '0'..'9') pos++
            }
            if (pos < s.length && s[pos] == '.') {
                pos++
                if (pos >= s.length || s[pos] !in '0'..'9') throw error("bad number: digits expected after '.'")
                while (pos < s.length && s[pos] in '0'..'9') pos++
            }
            if (pos < s.length && (s[pos] == 'e' || s[pos] == 'E')) {
                pos++
                if (pos < s.length && (s[pos] == '+' || s[pos] == '-')) pos++
                if (pos >= s.length || s[pos] !in '0'..'9') throw error("bad number: exponent digits expected")
                while (pos < s.length && s[pos] in '0'..'9') pos++
            }
            return s.substring(start, pos).toDouble() // correctly rounded, like Python's float()
        }
    }
}
