package dev.edgefgic.demo.logic

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

class JsonTest {
    @Test
    fun parsesNestedValuesInOrder() {
        val v = Json.parse(""" { "b": [1, -2.5e-3, 0, 1E2, true, false, null], "a": {"x": "y"}, "e": {} , "l": [] } """)
        assertEquals(listOf("b", "a", "e", "l"), (v as Map<*, *>).keys.toList())
        assertEquals(listOf(1.0, -0.0025, 0.0, 100.0, true, false, null), v["b"])
        assertEquals(mapOf("x" to "y"), v["a"])
        assertEquals(emptyMap<String, Any?>(), v["e"])
        assertEquals(emptyList<Any?>(), v["l"])
    }

    @Test
    fun decodesEscapesAndSurrogatePairs() {
        // what Python's json.dumps (ensure_ascii) writes for "čmelák 🐝" plus the short escapes
        val v = Json.parse("\"\\u010dmel\\u00e1k \\ud83d\\udc1d \\\"q\\\" \\\\ \\/ \\n\\t\\r\\b\\f\"")
        assertEquals("čmelák 🐝 \"q\" \\ / \n\t\r\b\u000C", v)
        assertEquals("čmelák 🐝", Json.parse("\"čmelák 🐝\"")) // raw UTF-8 text too
    }

    @Test
    fun numbersAreExactDoubles() {
        // a float32 scale as Python prints it must come back bit-identical
        assertEquals(0.013576973229646683, Json.parse("0.013576973229646683") as Double, 0.0)
        assertEquals(-40.0, Json.parse("-40") as Double, 0.0)
        assertTrue((Json.parse("NaN") as Double).isNaN()) // Python's allow_nan output
        assertEquals(Double.NEGATIVE_INFINITY, Json.parse("-Infinity") as Double, 0.0)
        assertNull(Json.parse(" null "))
    }

    @Test
    fun rejectsMalformedText() {
        for (bad in listOf("", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "\"open", "01", "1.", "-", "1e", "tru",
                           "[1] 2", "\"\\x\"", "\"\\u12\"", "\"tab\there\"", "{1:2}")) {
            val e = assertThrows("'$bad' must be rejected", JsonException::class.java) { Json.parse(bad) }
            assertTrue(e.message!!, e.message!!.startsWith("invalid JSON at offset"))
        }
    }

    @Test
    fun deepNestingFailsCleanly() {
        assertThrows(JsonException::class.java) { Json.parse("[".repeat(100_000)) }
    }
}
