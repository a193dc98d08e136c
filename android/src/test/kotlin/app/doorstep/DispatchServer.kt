package app.doorstep

import java.io.File
import java.net.URI
import java.net.URLEncoder
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.charset.StandardCharsets
import java.time.Duration
import java.util.UUID

/**
 * The reference dispatch server the test runner started (tests/kotlin.sh),
 * driven through its `/admin` endpoints (docs/dispatch-api.yaml). One server
 * serves every test, so each test uses its own driver and its own job ids.
 */
object Dispatch {
    val baseUrl: String by lazy {
        System.getenv("DOORSTEP_DISPATCH_URL")?.trimEnd('/')
            ?: error("DOORSTEP_DISPATCH_URL is not set; run the tests through tests/kotlin.sh")
    }

    private val http: HttpClient = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()

    class Answer(val status: Int, val body: String) {
        fun json(): Any? = Json.parse(body)
    }

    fun call(method: String, path: String, body: String? = null): Answer {
        val request = HttpRequest.newBuilder(URI.create(baseUrl + path))
            .timeout(Duration.ofSeconds(10))
            .method(
                method,
                if (body == null) HttpRequest.BodyPublishers.noBody()
                else HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8),
            )
            .apply { if (body != null) header("Content-Type", "application/json") }
            .build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8))
        return Answer(response.statusCode(), response.body())
    }

    private fun expect(answer: Answer, status: Int, what: String): Answer {
        check(answer.status == status) { "$what: expected HTTP $status, got ${answer.status}: ${answer.body}" }
        return answer
    }

    /** A new bearer token for [driverId]. */
    fun issueToken(driverId: String): String {
        val answer = expect(call("POST", "/admin/drivers/${encode(driverId)}/tokens"), 201, "issue token")
        return answer.json().obj()["token"] as String
    }

    fun revokeToken(token: String) {
        expect(call("DELETE", "/admin/tokens/${encode(token)}"), 204, "revoke token")
    }

    /** Creates the document's jobs on the server for [driverId]; their ids, in document order. */
    fun assignJobs(driverId: String, document: String): List<UUID> {
        val body = """{"driver_id":"$driverId","document":$document}"""
        val answer = expect(call("POST", "/admin/jobs", body), 201, "assign jobs")
        return answer.json().obj()["job_ids"].list().map { UUID.fromString(it as String) }
    }

    fun cancelJob(jobId: UUID) {
        expect(call("POST", "/admin/jobs/$jobId/cancel"), 200, "cancel job")
    }

    /** The server's view of a job: `state`, `status`, `conflicts`, ... */
    fun job(jobId: UUID): Map<String, Any?> =
        expect(call("GET", "/admin/jobs/$jobId"), 200, "get job").json().obj()

    /** Every mutation the server processed for a device, in order. */
    fun processed(clientId: UUID): List<Map<String, Any?>> =
        expect(call("GET", "/admin/clients/$clientId"), 200, "get client").json().obj()["processed"].list().map { it.obj() }

    private fun encode(text: String) = URLEncoder.encode(text, StandardCharsets.UTF_8)
}

/** A driver id no other test (or earlier run against the same server) uses. */
fun freshDriverId(): String = "kotlin-" + UUID.randomUUID().toString().take(13)

private val sampleText: String by lazy {
    File(System.getenv("DOORSTEP_SAMPLE_DOCUMENT") ?: error("DOORSTEP_SAMPLE_DOCUMENT is not set")).readText()
}

private val uuidPattern = Regex("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
private val barcodePattern = Regex("\"barcode\"\\s*:\\s*\"([^\"]*)\"")

/**
 * The sample day (10 jobs from 3 stores) with every UUID and barcode
 * replaced, consistently, by fresh ones: the server refuses job ids it has
 * seen, and every test gets a day of its own.
 */
fun freshSampleDocument(): String {
    val ids = HashMap<String, String>()
    val tag = UUID.randomUUID().toString().take(8)
    return sampleText
        .replace(uuidPattern) { ids.getOrPut(it.value.lowercase()) { UUID.randomUUID().toString() } }
        .replace(barcodePattern) { "\"barcode\": \"${it.groupValues[1]}-$tag\"" }
}

@Suppress("UNCHECKED_CAST")
fun Any?.obj(): Map<String, Any?> = this as? Map<String, Any?> ?: error("expected a JSON object, got $this")

@Suppress("UNCHECKED_CAST")
fun Any?.list(): List<Any?> = this as? List<Any?> ?: error("expected a JSON array, got $this")

/**
 * Just enough JSON for the admin answers (no JSON library on the test
 * classpath): objects as maps, arrays as lists, integers as Long, other
 * numbers as Double.
 */
object Json {
    fun parse(text: String): Any? {
        val parser = Parser(text)
        val value = parser.value()
        parser.space()
        require(parser.at == text.length) { "trailing characters at ${parser.at} in $text" }
        return value
    }

    private class Parser(val text: String) {
        var at = 0

        fun space() {
            while (at < text.length && text[at].isWhitespace()) at++
        }

        fun fail(what: String): Nothing = throw IllegalArgumentException("$what at $at in JSON: $text")

        fun value(): Any? {
            space()
            if (at >= text.length) fail("unexpected end")
            return when (val c = text[at]) {
                '{' -> obj()
                '[' -> array()
                '"' -> string()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> if (c == '-' || c.isDigit()) number() else fail("unexpected '$c'")
            }
        }

        fun literal(word: String, value: Any?): Any? {
            if (!text.startsWith(word, at)) fail("expected $word")
            at += word.length
            return value
        }

        fun obj(): Map<String, Any?> {
            val map = LinkedHashMap<String, Any?>()
            at++ // {
            space()
            if (text.getOrNull(at) == '}') return map.also { at++ }
            while (true) {
                space()
                if (text.getOrNull(at) != '"') fail("expected a key")
                val key = string()
                space()
                if (text.getOrNull(at) != ':') fail("expected ':'")
                at++
                map[key] = value()
                space()
                when (text.getOrNull(at)) {
                    ',' -> at++
                    '}' -> return map.also { at++ }
                    else -> fail("expected ',' or '}'")
                }
            }
        }

        fun array(): List<Any?> {
            val list = ArrayList<Any?>()
            at++ // [
            space()
            if (text.getOrNull(at) == ']') return list.also { at++ }
            while (true) {
                list.add(value())
                space()
                when (text.getOrNull(at)) {
                    ',' -> at++
                    ']' -> return list.also { at++ }
                    else -> fail("expected ',' or ']'")
                }
            }
        }

        fun string(): String {
            val out = StringBuilder()
            at++ // opening quote
            while (true) {
                if (at >= text.length) fail("unterminated string")
                val c = text[at++]
                when (c) {
                    '"' -> return out.toString()
                    '\\' -> {
                        val e = text.getOrNull(at++) ?: fail("unterminated escape")
                        when (e) {
                            'n' -> out.append('\n')
                            't' -> out.append('\t')
                            'r' -> out.append('\r')
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000c')
                            'u' -> {
                                if (at + 4 > text.length) fail("short \\u escape")
                                out.append(text.substring(at, at + 4).toInt(16).toChar())
                                at += 4
                            }
                            else -> out.append(e) // \" \\ \/
                        }
                    }
                    else -> out.append(c)
                }
            }
        }

        fun number(): Any {
            val start = at
            while (at < text.length && (text[at].isDigit() || text[at] in "+-.eE")) at++
            val raw = text.substring(start, at)
            return raw.toLongOrNull() ?: raw.toDoubleOrNull() ?: fail("bad number $raw")
        }
    }
}
