/* The filter's own strict JSON reader (not cJSON): it keeps what cJSON
 * would lose, a number's literal (integers compare exactly, not as
 * doubles), a string's length (an escaped NUL does not end it), and every
 * member of an object (duplicate keys are refused). Private to filter*.c. */
#ifndef SVDB_FILTER_JSON_H
#define SVDB_FILTER_JSON_H

#include <stddef.h>

#define JSON_MAX_DEPTH 256 /* nesting of the filter's JSON */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;
typedef struct jnode jnode;
struct jnode {
    jtype t;
    int b;
    char *key; /* member name in an object: decoded, NUL-terminated, may hold NUL */
    size_t key_len;
    char *s; /* J_STR: decoded; J_NUM: the literal */
    size_t len;
    jnode *kids; /* J_ARR, J_OBJ */
    size_t n, cap;
};

/* Parses `text` into root (freed by svdb__fjson_free, also on failure);
 * `doc` names where_document rather than where in messages. SVDB_EINVAL
 * saying what is wrong and at which byte, or SVDB_ENOMEM. */
int svdb__fjson_parse(const char *text, int doc, jnode *root);
void svdb__fjson_free(jnode *j);
/* Shared with the row scanner: the 4 hex digits of a \u escape at p (0 when
 * malformed), and a code point written as UTF-8 (its length). */
int svdb__fjson_hex4(const char *p, const char *e, unsigned *out);
size_t svdb__fjson_put_utf8(unsigned cp, char *o);

#endif
