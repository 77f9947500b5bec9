/* CRC32C: known vectors (RFC 3720 B.4), incremental use, and the hardware
 * version against the table one over lengths and alignments. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "helpers.h"

static void check_all(const void *p, size_t n, uint32_t want)
{
    assert_int_equal(svdb__crc32c_sw(0, p, n), want);
    assert_int_equal(svdb__crc32c(0, p, n), want);
    svdb_crc_fn hw = svdb__crc32c_hw();
    if (hw) assert_int_equal(hw(0, p, n), want);
}

static void test_crc32c__known_vectors(void **state)
{
    (void)state;
    check_all("123456789", 9, 0xE3069283u);
    check_all("", 0, 0);
    unsigned char b[32];
    memset(b, 0, 32);
    check_all(b, 32, 0x8A9136AAu);
    memset(b, 0xff, 32);
    check_all(b, 32, 0x62A8AB43u);
    for (int i = 0; i < 32; i++) b[i] = (unsigned char)i;
    check_all(b, 32, 0x46DD794Eu);
    for (int i = 0; i < 32; i++) b[i] = (unsigned char)(31 - i);
    check_all(b, 32, 0x113FDB5Cu);
}

static void test_crc32c__incremental(void **state)
{
    (void)state;
    const char *s = "123456789";
    for (size_t cut = 0; cut <= 9; cut++) {
        assert_int_equal(svdb__crc32c(svdb__crc32c(0, s, cut), s + cut, 9 - cut), 0xE3069283u);
        assert_int_equal(svdb__crc32c_sw(svdb__crc32c_sw(0, s, cut), s + cut, 9 - cut), 0xE3069283u);
    }
}

static void test_crc32c__hw_matches_sw(void **state)
{
    (void)state;
    svdb_crc_fn hw = svdb__crc32c_hw();
    if (!hw) skip();
    enum { MAX = 40000 }; /* past three 1 KiB blocks, where the hardware version interleaves */
    unsigned char *buf = malloc(MAX + 16);
    th_random((float *)buf, (MAX + 16) / 4, 9);
    uint64_t rng = 1;
    for (size_t len = 0; len < 300; len++)
        for (size_t align = 0; align < 8; align++) {
            uint32_t seed = th_randn(&rng, 3) == 0 ? 0 : (uint32_t)th_rand64(&rng);
            assert_int_equal(hw(seed, buf + align, len), svdb__crc32c_sw(seed, buf + align, len));
        }
    for (int i = 0; i < 200; i++) {
        size_t len = th_randn(&rng, MAX), align = th_randn(&rng, 16);
        assert_int_equal(hw(0, buf + align, len), svdb__crc32c_sw(0, buf + align, len));
        /* Split anywhere. */
        size_t cut = len ? th_randn(&rng, (uint32_t)len) : 0;
        assert_int_equal(hw(svdb__crc32c_sw(0, buf + align, cut), buf + align + cut, len - cut),
                         svdb__crc32c_sw(0, buf + align, len));
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c__known_vectors),
        cmocka_unit_test(test_crc32c__incremental),
        cmocka_unit_test(test_crc32c__hw_matches_sw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
