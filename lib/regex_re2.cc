// The C interface of lib/regex.h over RE2. Built with -fvisibility=hidden so
// that no C++ symbol leaves libsvdb; every entry point catches all exceptions.
#include "regex.h"

extern "C" {
#include "error.h"
}

#include <re2/re2.h>

#include <string>

struct svdb_regex {
    re2::RE2 *re;
};

namespace {

re2::RE2::Options options()
{
    re2::RE2::Options o;
    o.set_log_errors(false);
    o.set_max_mem(SVDB_REGEX_MAX_MEM);
    o.set_never_capture(true);
    return o; // UTF-8, case-sensitive, '.' not matching '\n': as Rust's regex
}

int digits(const char *p, size_t n, size_t *i)
{
    size_t start = *i;
    while (*i < n && p[*i] >= '0' && p[*i] <= '9') ++*i;
    return *i > start;
}

// RE2 reads a '{' that opens no counted repetition as a literal brace, so
// "a{,1000}" would search for that text; Rust's regex (ChromaDB) refuses it.
// Refuse it too, so a pattern never means something else here. Returns NULL
// or the reason.
const char *brace_error(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char c = p[i];
        if (c == '\\') {
            if (i + 2 < n && (p[i + 1] == 'p' || p[i + 1] == 'P' || p[i + 1] == 'x') && p[i + 2] == '{') {
                i += 3;
                while (i < n && p[i] != '}') i++;
            } else {
                i++;
            }
            i++;
        } else if (c == '[') { // a class: its braces are literal
            i++;
            if (i < n && p[i] == '^') i++;
            if (i < n && p[i] == ']') i++;
            while (i < n && p[i] != ']') {
                if (p[i] == '\\') {
                    i += 2;
                } else if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
                    size_t j = i + 2;
                    while (j + 1 < n && !(p[j] == ':' && p[j + 1] == ']')) j++;
                    i = j + 2;
                } else {
                    i++;
                }
            }
            i++;
        } else if (c == '{') {
            i++;
            if (!digits(p, n, &i)) return "a '{' that does not open a counted repetition {n}, {n,} or {n,m} (write \\{ for a brace)";
            if (i < n && p[i] == ',') {
                i++;
                digits(p, n, &i);
            }
            if (i >= n || p[i] != '}') return "an unclosed or malformed counted repetition (write \\{ for a brace)";
            i++;
        } else {
            i++;
        }
    }
    return nullptr;
}

int refuse(const char *pattern, size_t len, const char *why)
{
    int shown = len > 200 ? 200 : (int)len;
    return svdb__fail(SVDB_EINVAL, "invalid where_document filter: bad regular expression \"%.*s%s\": %s", shown, pattern,
                      len > 200 ? "..." : "", why);
}

} // namespace

extern "C" int svdb__regex_compile(const char *pattern, size_t len, svdb_regex **out)
{
    *out = nullptr;
    svdb_regex *r = nullptr;
    try {
        const char *why = brace_error(pattern, len);
        if (why) return refuse(pattern, len, why);
        re2::StringPiece pat(pattern, len);
        r = new svdb_regex{nullptr};
        r->re = new re2::RE2(pat, options());
        if (!r->re->ok()) {
            std::string msg = r->re->error_code() == re2::RE2::ErrorPatternTooLarge
                                  ? "too large for the regex engine's memory bound (8 MiB)"
                                  : r->re->error();
            svdb__regex_free(r);
            return refuse(pattern, len, msg.c_str());
        }
        *out = r;
        return SVDB_OK;
    } catch (...) {
        svdb__regex_free(r);
        return svdb__fail(SVDB_ENOMEM, "out of memory compiling a regular expression");
    }
}

extern "C" int svdb__regex_search(const svdb_regex *r, const char *text, size_t len)
{
    try {
        return re2::RE2::PartialMatch(re2::StringPiece(text, len), *r->re) ? 1 : 0;
    } catch (...) {
        return -1;
    }
}

extern "C" size_t svdb__regex_cost(const svdb_regex *r) { return (size_t)r->re->ProgramSize(); }

extern "C" void svdb__regex_free(svdb_regex *r)
{
    if (!r) return;
    try {
        delete r->re;
        delete r;
    } catch (...) {
    }
}
