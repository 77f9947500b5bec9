/* The where grammar: compile errors and evaluation against row metadata. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "filter.h"
#include "svdb.h"

static int eval2(const char *where, const char *where_document, const char *meta)
{
    svdb_filter *f = NULL;
    assert_int_equal(svdb__filter_compile(where, where_document, &f), SVDB_OK);
    assert_non_null(f);
    int r = svdb__filter_match(f, meta, meta ? strlen(meta) : 0);
    svdb__filter_free(f);
    return r;
}

static int doc(const char *where_document, const char *meta) { return eval2(NULL, where_document, meta); }

static int eval(const char *where, const char *meta)
{
    svdb_filter *f = NULL;
    assert_int_equal(svdb__filter_compile(where, NULL, &f), SVDB_OK);
    int r = svdb__filter_match(f, meta, meta ? strlen(meta) : 0);
    svdb__filter_free(f);
    return r;
}

static void test_filter__rejects_bad_clauses(void **state)
{
    (void)state;
    const char *bad[] = {
        "",                                  /* not JSON */
        "[1]",                               /* not an object */
        "{}",                                /* no key */
        "{\"a\": 1, \"b\": 2}",              /* two keys: ranges need $and */
        "{\"a\": {\"$gt\": 1, \"$lt\": 3}}", /* two operators */
        "{\"a\": {\"$like\": \"x\"}}",       /* unknown operator */
        "{\"a\": {\"$gt\": \"x\"}}",         /* ordering needs a number */
        "{\"a\": {\"$in\": []}}",            /* empty list */
        "{\"a\": {\"$in\": [1, \"x\"]}}",    /* mixed types */
        "{\"a\": {\"$in\": 3}}",             /* not a list */
        "{\"a\": null}",                     /* null operand */
        "{\"a\": [1, 2]}",                   /* list operand for $eq */
        "{\"$and\": [{\"a\": 1}]}",          /* fewer than two clauses */
        "{\"$or\": {\"a\": 1}}",             /* not a list */
        "{\"$contains\": \"x\"}",            /* operator at field position */
        "{\"\": 1}",                         /* empty field name */
        "{\"a\": 1} trailing",               /* trailing garbage */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        svdb_filter *f = (svdb_filter *)0x1;
        assert_int_equal(svdb__filter_compile(bad[i], NULL, &f), SVDB_EINVAL);
        assert_null(f);
        assert_non_null(strstr(svdb_errmsg(), "where"));
    }
    svdb_filter *f = (svdb_filter *)0x1;
    assert_int_equal(svdb__filter_compile(NULL, NULL, &f), SVDB_OK); /* no condition */
    assert_null(f);
}

static void test_filter__rejects_bad_document_clauses(void **state)
{
    (void)state;
    const char *bad[] = {
        "",                                             /* not JSON */
        "\"text\"",                                     /* not an object */
        "{}",                                           /* no key */
        "{\"$contains\": \"a\", \"$regex\": \"b\"}",    /* two keys */
        "{\"$contains\": \"\"}",                        /* empty operand */
        "{\"$contains\": 3}",                           /* not a string */
        "{\"$like\": \"a\"}",                           /* unknown operator */
        "{\"text\": {\"$contains\": \"a\"}}",           /* a where clause, not a document clause */
        "{\"$regex\": \"a(\"}",                         /* bad regular expression */
        "{\"$and\": [{\"$contains\": \"a\"}]}",         /* fewer than two clauses */
        "{\"$or\": {\"$contains\": \"a\"}}",            /* not a list */
        /* patterns whose compilation would blow up, and back-references */
        "{\"$regex\": \"ab++++++++++++++++++++c\"}",
        "{\"$regex\": \"a**\"}",
        "{\"$regex\": \"((a{99}){99}){99}\"}",
        "{\"$regex\": \"x{1001}\"}",
        "{\"$regex\": \"(a)\\\\1\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        svdb_filter *f = (svdb_filter *)0x1;
        assert_int_equal(svdb__filter_compile(NULL, bad[i], &f), SVDB_EINVAL);
        assert_null(f);
        assert_non_null(strstr(svdb_errmsg(), "where_document"));
        /* a good where beside a bad where_document is freed, not leaked */
        assert_int_equal(svdb__filter_compile("{\"a\": 1}", bad[i], &f), SVDB_EINVAL);
        assert_null(f);
    }
    svdb_filter *f = (svdb_filter *)0x1;
    assert_int_equal(svdb__filter_compile("{\"#document\": {\"$contains\": \"\"}}", NULL, &f), SVDB_EINVAL);
    assert_null(f);
}

static void test_filter__documents(void **state)
{
    (void)state;
    const char *m = "{\"#document\": \"The quick brown fox\\njumps \\\"over\\\" caf\\u00e9\", \"n\": 1}";
    assert_true(doc("{\"$contains\": \"quick\"}", m));
    assert_false(doc("{\"$contains\": \"Quick\"}", m)); /* case-sensitive */
    assert_true(doc("{\"$contains\": \"fox\\njumps\"}", m)); /* escapes decoded before matching */
    assert_true(doc("{\"$contains\": \"\\\"over\\\"\"}", m));
    assert_true(doc("{\"$contains\": \"caf\xc3\xa9\"}", m));
    assert_false(doc("{\"$not_contains\": \"brown\"}", m));
    assert_true(doc("{\"$not_contains\": \"purple\"}", m));
    assert_true(doc("{\"$regex\": \"q[a-z]+k\"}", m)); /* a search, not a full match */
    assert_true(doc("{\"$regex\": \"^The\"}", m));
    assert_false(doc("{\"$regex\": \"^quick\"}", m));
    assert_true(doc("{\"$not_regex\": \"[0-9]\"}", m));
    assert_true(doc("{\"$regex\": \"(qu|xx)i{1,3}c?k+\"}", m)); /* ordinary repetitions pass the guard */
    assert_true(doc("{\"$regex\": \"[*+?]{0}brown\"}", m));
    assert_false(doc("{\"$not_regex\": \"o{1}x\"}", m));
    assert_true(doc("{\"$and\": [{\"$contains\": \"fox\"}, {\"$regex\": \"jumps\"}]}", m));
    assert_false(doc("{\"$and\": [{\"$contains\": \"fox\"}, {\"$contains\": \"dog\"}]}", m));
    assert_true(doc("{\"$or\": [{\"$contains\": \"dog\"}, {\"$contains\": \"fox\"}]}", m));
    /* a document without escapes is tested in place: anchors see its ends, not the JSON around it */
    const char *plain = "{\"#document\": \"quick brown fox\", \"z\": \"fox\"}";
    assert_true(doc("{\"$regex\": \"^quick brown fox$\"}", plain));
    assert_false(doc("{\"$regex\": \"fox\\\"\"}", plain));
    assert_true(doc("{\"$contains\": \"own f\"}", plain));
    assert_false(doc("{\"$contains\": \"fox\\\"\"}", plain));
    assert_true(doc("{\"$not_regex\": \"^brown\"}", plain));
    /* rows without a document (or with a non-string one) match only the negations */
    const char *none[] = {NULL, "{\"n\": 1}", "{\"#document\": 5}", "{\"#document\": null}"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        assert_false(doc("{\"$contains\": \"a\"}", none[i]));
        assert_false(doc("{\"$regex\": \".\"}", none[i]));
        assert_true(doc("{\"$not_contains\": \"a\"}", none[i]));
        assert_true(doc("{\"$not_regex\": \".\"}", none[i]));
    }
    /* ChromaDB's spelling inside where, and where AND where_document */
    assert_true(eval("{\"#document\": {\"$contains\": \"brown\"}}", m));
    assert_false(eval("{\"#document\": {\"$not_contains\": \"brown\"}}", m));
    assert_true(eval("{\"#document\": {\"$not_contains\": \"brown\"}}", "{\"n\": 1}"));
    assert_true(eval2("{\"n\": 1}", "{\"$contains\": \"fox\"}", m));
    assert_false(eval2("{\"n\": 2}", "{\"$contains\": \"fox\"}", m));
    assert_false(eval2("{\"n\": 1}", "{\"$contains\": \"dog\"}", m));
}

static void test_filter__equality_and_types(void **state)
{
    (void)state;
    const char *m = "{\"s\": \"red\", \"i\": 2, \"f\": 2.5, \"b\": true, \"n\": null, \"u\": \"caf\\u00e9\"}";
    assert_true(eval("{\"s\": \"red\"}", m));
    assert_false(eval("{\"s\": \"Red\"}", m)); /* case-sensitive */
    assert_true(eval("{\"i\": 2}", m));
    assert_true(eval("{\"i\": 2.0}", m)); /* int and float compare mathematically */
    assert_true(eval("{\"f\": {\"$eq\": 2.5}}", m));
    assert_true(eval("{\"b\": true}", m));
    assert_false(eval("{\"b\": 1}", m)); /* bools are their own type */
    assert_false(eval("{\"i\": true}", m));
    assert_false(eval("{\"n\": \"null\"}", m));
    assert_true(eval("{\"u\": \"caf\xc3\xa9\"}", m)); /* escapes decoded */
    assert_false(eval("{\"missing\": 1}", m));
    assert_true(eval("{\"missing\": {\"$ne\": 1}}", m)); /* $ne matches rows lacking the key */
    assert_true(eval("{\"s\": {\"$ne\": \"blue\"}}", m));
    assert_false(eval("{\"s\": {\"$ne\": \"red\"}}", m));
    assert_true(eval("{\"s\": {\"$ne\": 3}}", m)); /* other type: not equal */
    assert_false(eval("{\"s\": \"red\"}", NULL)); /* no metadata at all */
    assert_true(eval("{\"s\": {\"$ne\": \"red\"}}", NULL));
}

static void test_filter__ordering(void **state)
{
    (void)state;
    const char *m = "{\"i\": 1, \"f\": -0.5, \"s\": \"9\", \"big\": 1e300}";
    assert_true(eval("{\"i\": {\"$gt\": 0}}", m));
    assert_false(eval("{\"i\": {\"$gt\": 1}}", m));
    assert_true(eval("{\"i\": {\"$gte\": 1}}", m));
    assert_true(eval("{\"i\": {\"$lt\": 1.5}}", m)); /* compared mathematically, not truncated */
    assert_false(eval("{\"i\": {\"$gte\": 1.5}}", m));
    assert_true(eval("{\"f\": {\"$lte\": -0.5}}", m));
    assert_false(eval("{\"s\": {\"$gt\": 1}}", m)); /* strings never order against numbers */
    assert_true(eval("{\"big\": {\"$gt\": 1e299}}", m));
    assert_false(eval("{\"missing\": {\"$lt\": 100}}", m));
}

static void test_filter__lists_and_logic(void **state)
{
    (void)state;
    const char *m = "{\"c\": \"b\", \"n\": 3, \"tags\": [\"x\", \"y\", 4], \"nested\": {\"c\": \"z\"}}";
    assert_true(eval("{\"c\": {\"$in\": [\"a\", \"b\"]}}", m));
    assert_false(eval("{\"c\": {\"$nin\": [\"a\", \"b\"]}}", m));
    assert_true(eval("{\"missing\": {\"$nin\": [\"a\"]}}", m));
    assert_true(eval("{\"n\": {\"$in\": [1, 3.0]}}", m));
    assert_false(eval("{\"n\": {\"$in\": [1.5]}}", m));
    assert_true(eval("{\"tags\": {\"$contains\": \"y\"}}", m));
    assert_true(eval("{\"tags\": {\"$contains\": 4}}", m));
    assert_false(eval("{\"tags\": {\"$contains\": \"z\"}}", m));
    assert_true(eval("{\"tags\": {\"$not_contains\": \"z\"}}", m));
    assert_true(eval("{\"missing\": {\"$not_contains\": \"z\"}}", m));
    assert_false(eval("{\"c\": {\"$contains\": \"b\"}}", m)); /* not an array */
    assert_false(eval("{\"nested\": \"z\"}", m));
    assert_true(eval("{\"$and\": [{\"c\": \"b\"}, {\"n\": {\"$gte\": 3}}]}", m));
    assert_false(eval("{\"$and\": [{\"c\": \"b\"}, {\"n\": {\"$gt\": 3}}]}", m));
    assert_true(eval("{\"$or\": [{\"c\": \"q\"}, {\"n\": 3}]}", m));
    assert_true(eval("{\"$or\": [{\"c\": \"q\"}, {\"$and\": [{\"n\": 3}, {\"tags\": {\"$contains\": \"x\"}}]}]}", m));
    /* cJSON accepts any control byte as white space at insert; so must the scanner */
    assert_true(eval("{\"c\": \"b\"}", "{\x1d\"a\":\x01 1\x1f,\"c\"\x02:\x03\"b\"}"));
    /* a key that appears only inside a nested object or a string is not a top-level key */
    assert_false(eval("{\"z\": 1}", "{\"a\": {\"z\": 1}, \"b\": \"\\\"z\\\": 1\"}"));
}

static void test_filter__depth_limit(void **state)
{
    (void)state;
    char deep[4096] = "";
    size_t n = 0;
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"$and\": [{\"a\": 1}, ");
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"a\": 1}");
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(deep + n, sizeof deep - n, "]}");
    svdb_filter *f;
    assert_int_equal(svdb__filter_compile(deep, NULL, &f), SVDB_EINVAL);
    assert_non_null(strstr(svdb_errmsg(), "deep"));
    n = 0;
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"$or\": [{\"$contains\": \"a\"}, ");
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"$contains\": \"b\"}");
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(deep + n, sizeof deep - n, "]}");
    assert_int_equal(svdb__filter_compile(NULL, deep, &f), SVDB_EINVAL);
    assert_non_null(strstr(svdb_errmsg(), "deep"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter__rejects_bad_clauses),
        cmocka_unit_test(test_filter__equality_and_types),
        cmocka_unit_test(test_filter__rejects_bad_document_clauses),
        cmocka_unit_test(test_filter__documents),
        cmocka_unit_test(test_filter__ordering),
        cmocka_unit_test(test_filter__lists_and_logic),
        cmocka_unit_test(test_filter__depth_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
