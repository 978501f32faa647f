package dev.edgefgic.demo.logic

import org.junit.Assume
import java.io.File

/**
 * Fixtures that tests/test_android_demo.py writes with the project's own Python code (exporter, torchvision
 * transforms, runner formulas), found through EDGE_FGIC_FIXTURES. Unset (a plain `./gradlew test`): the
 * fixture tests are skipped; set to a folder lacking them: they fail, so a broken setup never passes silently.
 *
 * Format: UTF-8 lines "key<TAB>value<TAB>value...", no JSON, so the expectations do not go through the
 * JSON parser under test. A line "case<TAB>name" starts a new record.
 */
object Fixtures {
    fun dir(sub: String): File {
        val root = System.getenv("EDGE_FGIC_FIXTURES")
        Assume.assumeTrue("EDGE_FGIC_FIXTURES is not set (tests/test_android_demo.py sets it)", root != null && root.isNotEmpty())
        val d = File(root, sub)
        if (!d.isDirectory) throw AssertionError("fixture folder $d is missing")
        return d
    }

    fun files(sub: String, suffix: String): List<File> {
        val found = (dir(sub).listFiles() ?: arrayOf()).filter { it.name.endsWith(suffix) }.sortedBy { it.name }
        if (found.isEmpty()) throw AssertionError("no *$suffix fixtures in ${dir(sub)}")
        return found
    }

    /** The case folders under [sub] (one artifact each, as the app's assets folder would hold it). */
    fun dirs(sub: String): List<File> {
        val found = (dir(sub).listFiles() ?: arrayOf()).filter { it.isDirectory }.sortedBy { it.name }
        if (found.isEmpty()) throw AssertionError("no case folders in ${dir(sub)}")
        return found
    }

    fun records(file: File): List<Record> {
        val out = ArrayList<Record>()
        var name = file.name
        var fields = LinkedHashMap<String, List<String>>()
        for (line in file.readLines(Charsets.UTF_8)) {
            if (line.isEmpty()) continue
            val parts = line.split('\t')
            if (parts[0] == "case") {
                if (fields.isNotEmpty()) out.add(Record(name, fields))
                name = "${file.name}:${parts[1]}"
                fields = LinkedHashMap()
            } else {
                fields[parts[0]] = parts.drop(1)
            }
        }
        if (fields.isNotEmpty()) out.add(Record(name, fields))
        return out
    }

    /** Report what was checked, so the Python side can see every fixture was used. */
    fun report(what: String, n: Int) = println("[fixtures] $what: $n checked")

    class Record(val name: String, private val fields: Map<String, List<String>>) {
        fun has(key: String): Boolean = fields.containsKey(key)
        fun list(key: String): List<String> = fields[key] ?: throw AssertionError("$name: no '$key'")
        fun one(key: String): String = list(key).single()
        fun int(key: String): Int = one(key).toInt()
        fun double(key: String): Double = one(key).toDouble()
        fun doubles(key: String): DoubleArray = list(key).map { it.toDouble() }.toDoubleArray()
        fun ints(key: String): IntArray = list(key).map { it.toInt() }.toIntArray()
    }
}
