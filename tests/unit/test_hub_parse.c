/*
 * test_hub_parse.c - unit tests of net/hub_parse.c: tree pages (real Hub
 * listings from hub-api.md and the fake Hub's hostile entries), repo info,
 * whoami, namespace listings, Link, Content-Range, RateLimit, Retry-After,
 * ISO 8601, names, repo specs, sizes, URL escaping and the NO_PROXY match.
 * Table-driven; no network.
 */
#include "net/hub_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* len = USE_STRLEN: take strlen() of the input */
#define USE_STRLEN ((size_t)-1)

static size_t len_of(const char *s, size_t len)
{
    return len == USE_STRLEN ? strlen(s) : len;
}

/* A string of n copies of c (static storage, n < 1024). */
static const char *repeat(char c, size_t n)
{
    static char buf[1024];

    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* ---- names ---- */

static void test_name_ok(void)
{
    static const struct {
        const char *s;
        size_t len;
        bool ok;
    } cases[] = {
        {"a", USE_STRLEN, true},
        {"config.json", USE_STRLEN, true},
        {".gitattributes", USE_STRLEN, true},
        {"...", USE_STRLEN, true},
        {"..a", USE_STRLEN, true},
        {"dir with space", USE_STRLEN, true},
        {"file #1?.txt", USE_STRLEN, true},
        {"\xc3\xa9t\xc3\xa9", USE_STRLEN, true},
        {"", USE_STRLEN, false},
        {".", USE_STRLEN, false},
        {"..", USE_STRLEN, false},
        {"a/b", USE_STRLEN, false},
        {"/", USE_STRLEN, false},
        {"a\0b", 3, false},
        {"\x01", USE_STRLEN, false},
        {"a\x7f", USE_STRLEN, false},
        {"a\tb", USE_STRLEN, false},
        {"a\n", USE_STRLEN, false},
        {"abc", 2, true}, /* only the first len bytes count */
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        bool got = hub_name_ok(cases[i].s, len_of(cases[i].s, cases[i].len));
        if (got != cases[i].ok)
            fprintf(stderr, "hub_name_ok case %zu\n", i);
        CHECK(got == cases[i].ok);
    }
    CHECK(hub_name_ok(repeat('x', HUB_NAME_MAX), HUB_NAME_MAX));
    CHECK(!hub_name_ok(repeat('x', HUB_NAME_MAX + 1), HUB_NAME_MAX + 1));
    CHECK(!hub_name_ok(repeat('x', 300), 300));
    CHECK(!hub_name_ok(NULL, 0));
}

static void test_repo_part_ok(void)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"acme", true},        {"bert-base-uncased", true},
        {"google-bert", true}, {"Llama-3.1-8B-Instruct", true},
        {"meta-llama", true},  {"a", true},
        {"a_b", true},         {"_a", true},
        {"a-.b", true},        {"", false},
        {"-a", false},         {"a-", false},
        {".a", false},         {"a.", false},
        {"a--b", false},       {"a..b", false},
        {"a b", false},        {"a/b", false},
        {"a@b", false},        {"a%2F", false},
        {"\xc3\xa9", false},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        bool got = hub_repo_part_ok(cases[i].s, strlen(cases[i].s));
        if (got != cases[i].ok)
            fprintf(stderr, "hub_repo_part_ok case %zu '%s'\n", i, cases[i].s);
        CHECK(got == cases[i].ok);
    }
    CHECK(hub_repo_part_ok(repeat('a', 96), 96));
    CHECK(!hub_repo_part_ok(repeat('a', 97), 97));
    CHECK(!hub_repo_part_ok("ab\0", 3));
}

static void test_rev_ok(void)
{
    static const struct {
        const char *s;
        size_t len;
        bool ok;
    } cases[] = {
        {"main", USE_STRLEN, true},
        {"dev", USE_STRLEN, true},
        {"v1.0", USE_STRLEN, true},
        {"refs/pr/1", USE_STRLEN, true},
        {"refs/convert/parquet", USE_STRLEN, true},
        {"86b5e0934494bd15c9632b12f734a8a67f723594", USE_STRLEN, true},
        {"feature/x", USE_STRLEN, true},
        {"a b", USE_STRLEN, true},
        {"", USE_STRLEN, false},
        {"/main", USE_STRLEN, false},
        {"main/", USE_STRLEN, false},
        {"a..b", USE_STRLEN, false},
        {"..", USE_STRLEN, false},
        {"a\nb", USE_STRLEN, false},
        {"a\x7f", USE_STRLEN, false},
        {"a\0b", 3, false},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        bool got = hub_rev_ok(cases[i].s, len_of(cases[i].s, cases[i].len));
        if (got != cases[i].ok)
            fprintf(stderr, "hub_rev_ok case %zu\n", i);
        CHECK(got == cases[i].ok);
    }
    CHECK(hub_rev_ok(repeat('r', HUB_REV_MAX - 1), HUB_REV_MAX - 1));
    CHECK(!hub_rev_ok(repeat('r', HUB_REV_MAX), HUB_REV_MAX));
}

static void test_repo_spec(void)
{
    static const struct {
        const char *s;
        size_t len;
        enum hub_err err;
        enum hub_repo_type type;
        const char *id;
        const char *rev;
    } cases[] = {
        {"acme/tiny", USE_STRLEN, HUB_OK, HUB_REPO_MODEL, "acme/tiny", ""},
        {"acme/tiny@dev", USE_STRLEN, HUB_OK, HUB_REPO_MODEL, "acme/tiny",
         "dev"},
        {"models/acme/tiny", USE_STRLEN, HUB_OK, HUB_REPO_MODEL, "acme/tiny",
         ""},
        {"datasets/acme/data", USE_STRLEN, HUB_OK, HUB_REPO_DATASET,
         "acme/data", ""},
        {"spaces/acme/demo@main", USE_STRLEN, HUB_OK, HUB_REPO_SPACE,
         "acme/demo", "main"},
        {"acme/tiny@refs%2Fpr%2F1", USE_STRLEN, HUB_OK, HUB_REPO_MODEL,
         "acme/tiny", "refs/pr/1"},
        {"acme/tiny@refs%2fpr%2f1", USE_STRLEN, HUB_OK, HUB_REPO_MODEL,
         "acme/tiny", "refs/pr/1"},
        {"acme/tiny@refs/pr/1", USE_STRLEN, HUB_OK, HUB_REPO_MODEL, "acme/tiny",
         "refs/pr/1"},
        {"acme/tiny@v1.0", USE_STRLEN, HUB_OK, HUB_REPO_MODEL, "acme/tiny",
         "v1.0"},
        {"acme/tiny@a%41", USE_STRLEN, HUB_OK, HUB_REPO_MODEL, "acme/tiny",
         "a%41"},
        {"acme/tiny@main%2", USE_STRLEN, HUB_OK, HUB_REPO_MODEL, "acme/tiny",
         "main%2"},
        {"acme/tiny@main@x", USE_STRLEN, HUB_OK, HUB_REPO_MODEL, "acme/tiny",
         "main@x"},
        {"meta-llama/Llama-3.1-8B-Instruct", USE_STRLEN, HUB_OK, HUB_REPO_MODEL,
         "meta-llama/Llama-3.1-8B-Instruct", ""},
        {"google-bert/"
         "bert-base-uncased@86b5e0934494bd15c9632b12f734a8a67f723594",
         USE_STRLEN, HUB_OK, HUB_REPO_MODEL, "google-bert/bert-base-uncased",
         "86b5e0934494bd15c9632b12f734a8a67f723594"},
        {"acme/tinyXXXX", 9, HUB_OK, HUB_REPO_MODEL, "acme/tiny", ""},
        {"acme/tiny@", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"acme", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"gpt2", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"@main", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"model/acme/tiny", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"dataset/acme/data", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "",
         ""},
        {"datasets/acme/data/x", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "",
         ""},
        {"/acme/tiny", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"acme//tiny", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"acme/tiny/", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"acme/-tiny", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"acme/ti ny", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"../acme", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"acme/tiny@a..b", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"acme/tiny@%2Fmain", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "",
         ""},
        {"acme/tiny@main%2F", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "",
         ""},
        {"acme/tiny@ma\nin", USE_STRLEN, HUB_E_PROTOCOL, HUB_REPO_MODEL, "",
         ""},
        {"acme/ti\0ny", 10, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
        {"acme/tiny@ma\0in", 15, HUB_E_PROTOCOL, HUB_REPO_MODEL, "", ""},
    };
    struct hub_repo_spec spec;
    char buf[1200];

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        enum hub_err err;

        /* A failed parse must not leave the previous answer behind. */
        CHECK(hub_parse_repo_spec("acme/x@y", 8, &spec) == HUB_OK);
        err = hub_parse_repo_spec(cases[i].s, len_of(cases[i].s, cases[i].len),
                                  &spec);
        if (err != cases[i].err)
            fprintf(stderr, "hub_parse_repo_spec case %zu\n", i);
        CHECK(err == cases[i].err);
        CHECK(spec.type == cases[i].type);
        CHECK_STR(spec.id, cases[i].id);
        CHECK_STR(spec.rev, cases[i].rev);
    }

    /* A rev filling HUB_REV_MAX - 1 bytes fits; one more does not. */
    snprintf(buf, sizeof(buf), "acme/tiny@%s", repeat('r', HUB_REV_MAX - 1));
    CHECK(hub_parse_repo_spec(buf, strlen(buf), &spec) == HUB_OK);
    CHECK(strlen(spec.rev) == HUB_REV_MAX - 1);
    snprintf(buf, sizeof(buf), "acme/tiny@%s", repeat('r', HUB_REV_MAX));
    CHECK(hub_parse_repo_spec(buf, strlen(buf), &spec) == HUB_E_PROTOCOL);
    /* 96-byte parts are the longest accepted. */
    snprintf(buf, sizeof(buf), "%s/", repeat('n', 96));
    memcpy(buf + 97, repeat('m', 96), 97);
    CHECK(hub_parse_repo_spec(buf, strlen(buf), &spec) == HUB_OK);
    CHECK(strlen(spec.id) == 193);
    buf[97] = '\0';
    snprintf(buf + 97, sizeof(buf) - 97, "%s", repeat('m', 97));
    CHECK(hub_parse_repo_spec(buf, strlen(buf), &spec) == HUB_E_PROTOCOL);
    CHECK(hub_parse_repo_spec(NULL, 0, &spec) == HUB_E_PROTOCOL);
}

static void test_repo_type_plural(void)
{
    CHECK_STR(hub_repo_type_plural(HUB_REPO_MODEL), "models");
    CHECK_STR(hub_repo_type_plural(HUB_REPO_DATASET), "datasets");
    CHECK_STR(hub_repo_type_plural(HUB_REPO_SPACE), "spaces");
}

/* ---- sizes, escaping ---- */

static void test_parse_size(void)
{
    static const struct {
        const char *s;
        bool ok;
        uint64_t v;
    } cases[] = {
        {"512M", true, UINT64_C(512) << 20},
        {"20G", true, UINT64_C(20) << 30},
        {"1.5G", true, UINT64_C(1610612736)},
        {"4096", true, 4096},
        {"10GiB", true, UINT64_C(10) << 30},
        {"100k", true, 102400},
        {"100K", true, 102400},
        {"1T", true, UINT64_C(1) << 40},
        {"2KB", true, 2048},
        {"2kib", true, 2048},
        {"1GB", true, UINT64_C(1) << 30},
        {"4096B", true, 4096},
        {"0.5K", true, 512},
        {"1.0000001G", true, UINT64_C(1) << 30},
        {"1", true, 1},
        {"16777215T", true, UINT64_C(16777215) << 40},
        {"18446744073709551615", true, UINT64_MAX},
        {"0", false, 0},
        {"0G", false, 0},
        {"0.0001K", false, 0},
        {"", false, 0},
        {"abc", false, 0},
        {"G", false, 0},
        {"-1", false, 0},
        {"+1", false, 0},
        {" 1", false, 0},
        {"1 ", false, 0},
        {"1 G", false, 0},
        {"1.5", false, 0},
        {"1.", false, 0},
        {"1.G", false, 0},
        {".5G", false, 0},
        {"1X", false, 0},
        {"1iB", false, 0},
        {"1Gi", false, 0},
        {"1GiBx", false, 0},
        {"1GG", false, 0},
        {"16777216T", false, 0},
        {"16777217T", false, 0}, /* would wrap to 1T */
        {"17179869185G", false, 0},
        {"18446744073709551615K", false, 0},
        {"18446744073709551616", false, 0},
        {"99999999999999999999999", false, 0},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint64_t v = 12345;
        bool ok = hub_parse_size(cases[i].s, &v);
        if (ok != cases[i].ok || v != cases[i].v)
            fprintf(stderr, "hub_parse_size case %zu '%s'\n", i, cases[i].s);
        CHECK(ok == cases[i].ok);
        CHECK(v == cases[i].v);
    }
}

static void test_url_escape(void)
{
    static const struct {
        const char *s;
        bool keep_slash;
        const char *want;
    } cases[] = {
        {"config.json", true, "config.json"},
        {"a b", false, "a%20b"},
        {"dir with space/file #1?.txt", true,
         "dir%20with%20space/file%20%231%3F.txt"},
        {"refs/pr/1", false, "refs%2Fpr%2F1"},
        {"refs/pr/1", true, "refs/pr/1"},
        {"AZaz09-._~", false, "AZaz09-._~"},
        {"\xc3\xa9", false, "%C3%A9"},
        {"100%", true, "100%25"},
        {"a+b&c=d", true, "a%2Bb%26c%3Dd"},
        {"\x01\x7f\xff", true, "%01%7F%FF"},
        {"", true, ""},
    };
    char out[128];

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        CHECK(
            hub_url_escape(cases[i].s, cases[i].keep_slash, out, sizeof(out)));
        CHECK_STR(out, cases[i].want);
    }
    /* Exact fits and one byte short. */
    CHECK(!hub_url_escape("abc", true, out, 3));
    CHECK_STR(out, "");
    CHECK(hub_url_escape("abc", true, out, 4));
    CHECK_STR(out, "abc");
    CHECK(!hub_url_escape("a b", true, out, 5));
    CHECK(hub_url_escape("a b", true, out, 6));
    CHECK_STR(out, "a%20b");
    CHECK(!hub_url_escape(" ", true, out, 3));
    CHECK(!hub_url_escape("a", true, out, 0));
}

/* ---- headers ---- */

static void test_iso8601(void)
{
    static const struct {
        const char *s;
        bool ok;
        int64_t t;
    } cases[] = {
        {"2024-02-19T11:06:12.000Z", true, 1708340772},
        {"2022-03-02T23:29:04.000Z", true, 1646263744},
        {"2019-09-23T19:48:44.000Z", true, 1569268124},
        {"2026-07-23T10:27:03.276Z", true, 1784802423},
        {"2024-02-19T11:06:12Z", true, 1708340772},
        {"2024-02-19t11:06:12z", true, 1708340772},
        {"2024-02-19T11:06:12.123456789Z", true, 1708340772},
        {"2024-02-19T11:06:12+01:00", true, 1708340772 - 3600},
        {"2024-02-19T11:06:12-01:30", true, 1708340772 + 5400},
        {"2024-02-19T11:06:12+0100", true, 1708340772 - 3600},
        {"2024-02-19T11:06:12.5+00:00", true, 1708340772},
        {"1970-01-01T00:00:00Z", true, 0},
        {"1969-12-31T23:59:59Z", true, -1},
        {"2024-02-29T00:00:00Z", true, 1709164800},
        {"9999-12-31T23:59:59Z", true, INT64_C(253402300799)},
        {"2023-02-29T00:00:00Z", false, 0},
        {"1900-02-29T00:00:00Z", false, 0},
        {"2024-13-01T00:00:00Z", false, 0},
        {"2024-00-01T00:00:00Z", false, 0},
        {"2024-04-31T00:00:00Z", false, 0},
        {"2024-02-19T24:00:00Z", false, 0},
        {"2024-02-19T11:60:00Z", false, 0},
        {"2024-02-19T11:06:61Z", false, 0},
        {"2024-02-19 11:06:12Z", false, 0},
        {"2024-02-19T11:06:12", false, 0},
        {"2024-02-19T11:06:12.Z", false, 0},
        {"2024-02-19T11:06:12Zjunk", false, 0},
        {"2024-02-19T11:06:12+24:00", false, 0},
        {"2024-02-19T11:06:12+01", false, 0},
        {"2024-2-19T11:06:12Z", false, 0},
        {"2024-02-19", false, 0},
        {"", false, 0},
        {"yesterday", false, 0},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int64_t t = 777;
        bool ok = hub_parse_iso8601(cases[i].s, &t);
        if (ok != cases[i].ok || t != cases[i].t)
            fprintf(stderr, "hub_parse_iso8601 case %zu '%s'\n", i, cases[i].s);
        CHECK(ok == cases[i].ok);
        CHECK(t == cases[i].t);
    }
}

static void test_ratelimit(void)
{
    static const struct {
        const char *s;
        bool ok;
        long r, t;
    } cases[] = {
        {"\"resolvers\";r=0;t=57", true, 0, 57},
        {"\"api\";r=10;t=3", true, 10, 3},
        {"\"resolvers\";r=2999;t=257", true, 2999, 257},
        {"\"api\";t=3", true, -1, 3},
        {"\"api\";r=4", true, 4, -1},
        {"\"api\"", true, -1, -1},
        {"api;r=1;t=2", true, 1, 2},
        {"\"api\"; r=1; t=2", true, 1, 2},
        {" \"api\";r=1;t=2 ", true, 1, 2},
        {"\"api\";q=500;w=300;r=4;t=9", true, 4, 9},
        {"\"api\";x=\"a;r=9\";r=4;t=9", true, 4, 9},
        {"\"api\";flag;r=4;t=9", true, 4, 9},
        {"\"api\";b=?1;d=1.5;r=4;t=9", true, 4, 9},
        {"\"api\";r=1;t=2, \"resolvers\";r=5;t=6", true, 1, 2},
        {"\"api\";r=1;r=2;t=3", true, 2, 3},
        {"\"api\";r=-1;t=3", false, -1, -1},
        {"\"api\";r=1.5;t=3", false, -1, -1},
        {"\"api\";r=;t=3", false, -1, -1},
        {"\"api\";r=x;t=3", false, -1, -1},
        {"\"api\";r=1234567890123456;t=1", false, -1, -1},
        {"\"api\";r=1;t=2 x", false, -1, -1},
        {"\"api\";R=1", false, -1, -1},
        {"\"unterminated;r=1", false, -1, -1},
        {"garbage;;", false, -1, -1},
        {";r=1", false, -1, -1},
        {"", false, -1, -1},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        long r = 99, t = 99;
        bool ok = hub_parse_ratelimit(cases[i].s, &r, &t);
        if (ok != cases[i].ok || r != cases[i].r || t != cases[i].t)
            fprintf(stderr, "hub_parse_ratelimit case %zu '%s'\n", i,
                    cases[i].s);
        CHECK(ok == cases[i].ok);
        CHECK(r == cases[i].r);
        CHECK(t == cases[i].t);
    }
}

static void test_retry_after(void)
{
    static const struct {
        const char *s;
        bool ok;
        long v;
    } cases[] = {
        {"120", true, 120},
        {"0", true, 0},
        {" 5 ", true, 5},
        {"Wed, 21 Oct 2015 07:28:00 GMT", false, 0},
        {"", false, 0},
        {"-1", false, 0},
        {"1.5", false, 0},
        {"5s", false, 0},
        {"99999999999999999999", false, 0},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        long v = 42;
        bool ok = hub_parse_retry_after(cases[i].s, &v);
        CHECK(ok == cases[i].ok);
        CHECK(v == cases[i].v);
    }
}

static void test_content_range(void)
{
    static const struct {
        const char *s;
        enum hub_err err;
        uint64_t first, last, total;
    } cases[] = {
        {"bytes 0-99/1000", HUB_OK, 0, 99, 1000},
        {"bytes 0-0/1", HUB_OK, 0, 0, 1},
        {"bytes 0-9/10", HUB_OK, 0, 9, 10},
        {"bytes 0-536063207/536063208", HUB_OK, 0, 536063207, 536063208},
        {"bytes 0-99/*", HUB_OK, 0, 99, UINT64_MAX},
        {"Bytes 1-2/3", HUB_OK, 1, 2, 3},
        {"bytes 1-2/3 ", HUB_OK, 1, 2, 3},
        {"bytes  1-2/3", HUB_OK, 1, 2, 3},
        {"bytes 5-4/10", HUB_E_PROTOCOL, 0, 0, 0},
        {"bytes 0-10/10", HUB_E_PROTOCOL, 0, 0, 0},
        {"bytes 0-9/0", HUB_E_PROTOCOL, 0, 0, 0},
        {"bytes */1000", HUB_E_PROTOCOL, 0, 0, 0},
        {"bits 0-1/2", HUB_E_PROTOCOL, 0, 0, 0},
        {"bytes0-1/2", HUB_E_PROTOCOL, 0, 0, 0},
        {"bytes 0-1", HUB_E_PROTOCOL, 0, 0, 0},
        {"bytes 0-1/", HUB_E_PROTOCOL, 0, 0, 0},
        {"bytes 0-/2", HUB_E_PROTOCOL, 0, 0, 0},
        {"bytes 0-1/2x", HUB_E_PROTOCOL, 0, 0, 0},
        {"bytes -1-2/3", HUB_E_PROTOCOL, 0, 0, 0},
        {"bytes +1-2/3", HUB_E_PROTOCOL, 0, 0, 0},
        {"bytes 18446744073709551616-1/2", HUB_E_PROTOCOL, 0, 0, 0},
        {"", HUB_E_PROTOCOL, 0, 0, 0},
        {"bytes", HUB_E_PROTOCOL, 0, 0, 0},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint64_t f = 7, l = 7, t = 7;
        enum hub_err err = hub_parse_content_range(cases[i].s, &f, &l, &t);
        if (err != cases[i].err)
            fprintf(stderr, "hub_parse_content_range case %zu '%s'\n", i,
                    cases[i].s);
        CHECK(err == cases[i].err);
        CHECK(f == cases[i].first);
        CHECK(l == cases[i].last);
        CHECK(t == cases[i].total);
    }
}

static void test_link_next(void)
{
    static const struct {
        const char *s;
        const char *want; /* NULL: false */
    } cases[] = {
        /* hub-api.md section 3, a real next link */
        {"<https://huggingface.co/api/models/h94/IP-Adapter/tree/main?expand="
         "false&limit=2&cursor=ZXlK...%3D>; rel=\"next\"",
         "https://huggingface.co/api/models/h94/IP-Adapter/tree/main?expand="
         "false&limit=2&cursor=ZXlK...%3D"},
        {"<https://a/x>; rel=next", "https://a/x"},
        {"<https://a/x>;rel=next", "https://a/x"},
        {"<https://a/x> ; rel = \"next\"", "https://a/x"},
        {"<https://a/x>; REL=NEXT", "https://a/x"},
        {"<https://a/x>; rel=\"Next\"", "https://a/x"},
        {"<https://a/prev>; rel=\"prev\", <https://a/next>; rel=\"next\"",
         "https://a/next"},
        {"<https://a/1>; rel=prev,<https://a/2>;rel=next", "https://a/2"},
        {"<https://a/x>; rel=\"prev next\"", "https://a/x"},
        {"<https://a/x>; rel=\"next prev\"", "https://a/x"},
        {"<https://a/x>; rel=\"prev\tnext\"", "https://a/x"},
        {"<https://a/x>; rel=\"next\"; title=\"x\"", "https://a/x"},
        {"<https://a/x>; title=\"x\"; rel=\"next\"", "https://a/x"},
        {"<https://a/1>; title=\"a, b; rel=next\", <https://a/2>; rel=next",
         "https://a/2"},
        {"<https://a/1>; title=\"a \\\"q\\\" <x>, y\", <https://a/2>; rel=next",
         "https://a/2"},
        {"garbage, <https://a/x>; rel=next", "https://a/x"},
        {"<https://a/1> junk, <https://a/2>; rel=next", "https://a/2"},
        {"<https://a/1>; rel=next, <https://a/2>; rel=next", "https://a/1"},
        {"</api/models?cursor=x>; rel=\"next\"", "/api/models?cursor=x"},
        {"<https://a/x>; rel=\"nextpage\"", NULL},
        {"<https://a/x>; rel=\"prev\"", NULL},
        {"<https://a/x>; rel=\"nex\"", NULL},
        {"<https://a/x>; rel=\"next-page\"", NULL},
        {"<https://a/1>; rel=\"prev\"; rel=\"next\"", NULL},
        {"<https://a/x>; title=next", NULL},
        {"<https://a/x>", NULL},
        /* hub-api.md section 4: xet links are not next links */
        {"<https://huggingface.co/api/models/x/xet-read-token/abc>; "
         "rel=\"xet-auth\", <https://cas-server.xethub.hf.co/v1/"
         "reconstructions/abc>; rel=\"xet-reconstruction-info\"",
         NULL},
        {"<https://a/x y>; rel=next", NULL},
        {"<https://a/x\ty>; rel=next", NULL},
        {"<https://a/x\x01>; rel=next", NULL},
        {"<>; rel=next", NULL},
        {"<https://a/x; rel=next", NULL},
        {"<https://a/x>; rel=\"next", NULL},
        {"<https://a/x>; rel=", NULL},
        {"<https://a/x>; =next", NULL},
        {"https://a/x; rel=next", NULL},
        {"", NULL},
        {",,, ,", NULL},
    };
    char out[512];

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        bool ok = hub_parse_link_next(cases[i].s, out, sizeof(out));
        if (ok != (cases[i].want != NULL))
            fprintf(stderr, "hub_parse_link_next case %zu '%s'\n", i,
                    cases[i].s);
        CHECK(ok == (cases[i].want != NULL));
        if (cases[i].want)
            CHECK_STR(out, cases[i].want);
        else
            CHECK_STR(out, "");
    }
    /* Fits exactly, one byte short. */
    CHECK(hub_parse_link_next("<https://a/x>; rel=next", out, 12));
    CHECK_STR(out, "https://a/x");
    CHECK(!hub_parse_link_next("<https://a/x>; rel=next", out, 11));
    CHECK(!hub_parse_link_next(NULL, out, sizeof(out)));
    CHECK(!hub_parse_link_next("<https://a/x>; rel=next", out, 0));
}

/* ---- tree pages ---- */

/* hub-api.md section 3: live listing of google-bert/bert-base-uncased at
 * dd4bc8b2..., completed with a directory and a README as the Hub sends
 * them (directories first). */
static const char bert_root[] =
    "[{\"type\":\"directory\",\"oid\":"
    "\"4b825dc642cb6eb9a060e54bf8d69288fbee4904\","
    "\"size\":0,\"path\":\"coreml\"},"
    "{\"type\":\"file\",\"oid\":\"dc08351d4dc0732d9c8af04070ced089b201ce2f\","
    "\"size\":345,\"path\":\".gitattributes\"},"
    "{\"type\":\"file\",\"oid\":\"9eb98c817f04b051b3bcca591bcd4e03cec88018\","
    "\"size\":536063208,\"path\":\"tf_model.h5\","
    "\"lfs\":{\"oid\":"
    "\"a7a17d6d844b5de815ccab5f42cad6d24496db3850a2a43d8258221018ce87d2\","
    "\"size\":536063208,\"pointerSize\":134},"
    "\"xetHash\":"
    "\"879c5715c18a0b7f051dd33f70f0a5c8dd1522e0a43f6f75520f16167f29279b\"},"
    "{\"type\":\"file\",\"oid\":\"a661b1a138dac6dc5590367402d100765010ffd6\","
    "\"size\":28,\"path\":\"tokenizer_config.json\",\"lastCommit\":{\"id\":"
    "\"dd4bc8b21efa05ec961e3efc4ee5e3832a3679c7\",\"title\":\"Update "
    "tf_model.h5\","
    "\"date\":\"2019-09-23T19:48:44.000Z\"}}]";

static const struct hub_tree_entry *find(const struct hub_tree *t,
                                         const char *name)
{
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->entries[i].name, name) == 0)
            return &t->entries[i];
    return NULL;
}

static enum hub_err parse_str(const char *json, const char *dir,
                              struct hub_tree *t, struct hub_why *why)
{
    return hub_parse_tree_page(json, strlen(json), dir, t, why);
}

static void test_tree_bert(void)
{
    const struct hub_tree_entry *e;
    struct hub_tree t;
    struct hub_why why;

    hub_tree_init(&t);
    hub_why_clear(&why);
    CHECK(parse_str(bert_root, "", &t, &why) == HUB_OK);
    CHECK(t.count == 4);
    CHECK(t.skipped == 0);
    CHECK_STR(why.line, "");
    hub_tree_finish(&t);
    CHECK(t.count == 4);
    if (t.count == 4) {
        CHECK_STR(t.entries[0].name, ".gitattributes");
        CHECK_STR(t.entries[1].name, "coreml");
        CHECK_STR(t.entries[2].name, "tf_model.h5");
        CHECK_STR(t.entries[3].name, "tokenizer_config.json");
    }
    e = find(&t, ".gitattributes");
    CHECK(e && !e->is_dir && e->size == 345);
    CHECK(e && strcmp(e->oid, "dc08351d4dc0732d9c8af04070ced089b201ce2f") == 0);
    CHECK(e && e->sha256[0] == '\0');
    e = find(&t, "tf_model.h5");
    CHECK(e && !e->is_dir && e->size == 536063208);
    CHECK(e && strcmp(e->oid, "9eb98c817f04b051b3bcca591bcd4e03cec88018") == 0);
    CHECK(e && strcmp(e->sha256, "a7a17d6d844b5de815ccab5f42cad6d24496db385"
                                 "0a2a43d8258221018ce87d2") == 0);
    e = find(&t, "coreml");
    CHECK(e && e->is_dir && e->size == 0);
    CHECK(e && strcmp(e->oid, "4b825dc642cb6eb9a060e54bf8d69288fbee4904") == 0);
    e = find(&t, "tokenizer_config.json");
    CHECK(e && e->size == 28);
    hub_tree_release(&t);
    CHECK(t.count == 0 && t.entries == NULL && t.skipped == 0);
}

static void test_tree_subdir(void)
{
    static const char page[] = "[{\"type\":\"directory\",\"oid\":"
                               "\"1111111111111111111111111111111111111111\","
                               "\"size\":0,\"path\":\"nested/a/b\"},"
                               "{\"type\":\"file\",\"oid\":"
                               "\"2222222222222222222222222222222222222222\","
                               "\"size\":12,\"path\":\"nested/a/info.json\"},"
                               "{\"type\":\"file\",\"oid\":"
                               "\"3333333333333333333333333333333333333333\","
                               "\"size\":5,\"path\":\"nested/a/b/deep.txt\"}]";
    struct hub_tree t;
    struct hub_why why;

    hub_tree_init(&t);
    hub_why_clear(&why);
    CHECK(parse_str(page, "nested/a", &t, &why) == HUB_OK);
    CHECK(t.count == 2);
    /* A recursive listing's grandchild is not ours. */
    CHECK(t.skipped == 1);
    CHECK_STR(why.line,
              "skipped entry 'nested/a/b/deep.txt': not a child of 'nested/a'");
    CHECK(find(&t, "b") && find(&t, "b")->is_dir);
    CHECK(find(&t, "info.json") && find(&t, "info.json")->size == 12);
    hub_tree_release(&t);
}

/* The fake Hub's "hostile" fault (tests/fakehub/README.md), one entry per
 * row, listed in directory "dir". */
static void test_tree_hostile(void)
{
    static const char ok_tail[] =
        ",\"oid\":\"dc08351d4dc0732d9c8af04070ced089b201ce2f\"";
    static const struct {
        const char *entry; /* JSON object text */
        bool kept;
        const char *why; /* expected why->line when it is the only entry */
    } cases[] = {
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/ok.txt\"%s}", true, ""},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"../x\"%s}", false,
         "skipped entry '../x': not a child of 'dir'"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/..\"%s}", false,
         "skipped entry 'dir/..': bad name"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/.\"%s}", false,
         "skipped entry 'dir/.': bad name"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/\"%s}", false,
         "skipped entry 'dir/': bad name"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir//x\"%s}", false,
         "skipped entry 'dir//x': not a child of 'dir'"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/a\\u0000b\"%s}", false,
         "skipped entry 'dir/a?b': bad name"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/a\\u0000\"%s}", false,
         "skipped entry 'dir/a?': bad name"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/a\\u0001\"%s}", false,
         "skipped entry 'dir/a?': bad name"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/a\\nb\"%s}", false,
         "skipped entry 'dir/a?b': bad name"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/a\\\\u0000b\"%s}", true,
         ""},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"other/x\"%s}", false,
         "skipped entry 'other/x': not a child of 'dir'"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dirx/y\"%s}", false,
         "skipped entry 'dirx/y': not a child of 'dir'"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir\"%s}", false,
         "skipped entry 'dir': not a child of 'dir'"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"/dir/x\"%s}", false,
         "skipped entry '/dir/x': not a child of 'dir'"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"\"%s}", false,
         "skipped entry '': not a child of 'dir'"},
        {"{\"type\":\"symlink\",\"size\":1,\"path\":\"dir/s\"%s}", false,
         "skipped entry 'dir/s': unknown type"},
        {"{\"type\":\"unknown\",\"size\":1,\"path\":\"dir/s\"%s}", false,
         "skipped entry 'dir/s': unknown type"},
        {"{\"type\":\"file\\u0000x\",\"size\":1,\"path\":\"dir/s\"%s}", false,
         "skipped entry 'dir/s': unknown type"},
        {"{\"type\":7,\"size\":1,\"path\":\"dir/s\"%s}", false,
         "skipped entry 'dir/s': no type"},
        {"{\"size\":1,\"path\":\"dir/s\"%s}", false,
         "skipped entry 'dir/s': no type"},
        {"{\"type\":\"file\",\"size\":-1,\"path\":\"dir/n\"%s}", false,
         "skipped entry 'dir/n': bad size"},
        {"{\"type\":\"file\",\"size\":1.5,\"path\":\"dir/n\"%s}", false,
         "skipped entry 'dir/n': bad size"},
        {"{\"type\":\"file\",\"size\":1e300,\"path\":\"dir/n\"%s}", false,
         "skipped entry 'dir/n': bad size"},
        {"{\"type\":\"file\",\"size\":4398046511105,\"path\":\"dir/n\"%s}",
         false, "skipped entry 'dir/n': bad size"},
        {"{\"type\":\"file\",\"size\":4398046511104,\"path\":\"dir/big\"%s}",
         true, ""},
        {"{\"type\":\"file\",\"size\":\"12\",\"path\":\"dir/n\"%s}", false,
         "skipped entry 'dir/n': bad size"},
        {"{\"type\":\"file\",\"path\":\"dir/n\"%s}", false,
         "skipped entry 'dir/n': no size"},
        {"{\"type\":\"directory\",\"path\":\"dir/d\"%s}", true, ""},
        {"{\"type\":\"directory\",\"size\":-5,\"path\":\"dir/d\"%s}", false,
         "skipped entry 'dir/d': bad size"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/o\","
         "\"oid\":\"dc08351d4dc0732d9c8af04070ced089b201ce2\"}%s",
         false, "skipped entry 'dir/o': bad oid"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/o\","
         "\"oid\":\"zc08351d4dc0732d9c8af04070ced089b201ce2f\"}%s",
         false, "skipped entry 'dir/o': bad oid"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/o\",\"oid\":5}%s", false,
         "skipped entry 'dir/o': bad oid"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/o\"}%s", true, ""},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/l\",\"lfs\":{\"oid\":"
         "\"a7a17d6d844b5de815ccab5f42cad6d24496db3850a2a43d8258221018ce87d\","
         "\"size\":1}%s}",
         false, "skipped entry 'dir/l': bad lfs oid"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/l\",\"lfs\":{\"oid\":"
         "\"a7a17d6d844b5de815ccab5f42cad6d24496db3850a2a43d8258221018ce87d2\","
         "\"size\":-1}%s}",
         false, "skipped entry 'dir/l': bad lfs size"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/l\",\"lfs\":{\"oid\":"
         "\"a7a17d6d844b5de815ccab5f42cad6d24496db3850a2a43d8258221018ce87d2\"}"
         "%s}",
         false, "skipped entry 'dir/l': bad lfs size"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/l\",\"lfs\":\"x\"%s}",
         false, "skipped entry 'dir/l': bad lfs oid"},
        {"{\"type\":\"file\",\"size\":1,\"path\":\"dir/l\",\"lfs\":null%s}",
         true, ""},
        {"{\"type\":\"file\",\"path\":\"dir/l\",\"lfs\":{\"oid\":"
         "\"a7a17d6d844b5de815ccab5f42cad6d24496db3850a2a43d8258221018ce87d2\","
         "\"size\":10}%s}",
         true, ""},
        {"{\"type\":\"file\",\"size\":1,\"path\":7%s}", false,
         "skipped entry '': no path"},
        {"[\"dir/x\"]%s", false, "skipped entry '': not an object"},
        {"\"dir/x\"%s", false, "skipped entry '': not an object"},
    };
    char entry[1024], page[1200];
    struct hub_tree t;
    struct hub_why why;

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        enum hub_err err;

        /* ok_tail goes inside the object, or after it when the format puts
         * %s last (then it must be empty, so pass ""). */
        const char *fmt = cases[i].entry;
        size_t fl = strlen(fmt);
        bool inside = fl >= 3 && strcmp(fmt + fl - 3, "%s}") == 0;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(entry, sizeof(entry), fmt, inside ? ok_tail : "");
#pragma GCC diagnostic pop
        snprintf(page, sizeof(page), "[%s]", entry);
        hub_tree_init(&t);
        hub_why_clear(&why);
        err = parse_str(page, "dir", &t, &why);
        if (err != HUB_OK || (t.count == 1) != cases[i].kept ||
            strcmp(why.line, cases[i].why) != 0)
            fprintf(stderr, "hostile case %zu: %s -> count %zu why '%s'\n", i,
                    page, t.count, why.line);
        CHECK(err == HUB_OK);
        CHECK((t.count == 1) == cases[i].kept);
        CHECK(t.skipped == (cases[i].kept ? 0u : 1u));
        CHECK_STR(why.line, cases[i].why);
        hub_tree_release(&t);
    }
}

static void test_tree_details(void)
{
    const struct hub_tree_entry *e;
    struct hub_tree t;
    struct hub_why why;
    char page[2048];

    /* A raw NUL inside a name (the body is not a C string). */
    {
        static const char raw[] = "[{\"type\":\"file\",\"size\":1,"
                                  "\"path\":\"a\0b\"},"
                                  "{\"type\":\"file\",\"size\":2,"
                                  "\"path\":\"c\"}]";
        hub_tree_init(&t);
        hub_why_clear(&why);
        CHECK(hub_parse_tree_page(raw, sizeof(raw) - 1, "", &t, &why) ==
              HUB_OK);
        CHECK(t.count == 1 && t.skipped == 1);
        CHECK(find(&t, "c") && !find(&t, "a"));
        CHECK_STR(why.line, "skipped entry 'a?b': bad name");
        hub_tree_release(&t);
    }

    /* 300-byte name (fakehub hostile), and 255 exactly. */
    hub_tree_init(&t);
    hub_why_clear(&why);
    snprintf(page, sizeof(page),
             "[{\"type\":\"file\",\"size\":1,\"path\":\"%s\"},",
             repeat('x', 300));
    snprintf(page + strlen(page), sizeof(page) - strlen(page),
             "{\"type\":\"file\",\"size\":1,\"path\":\"%s\"}]",
             repeat('y', 255));
    CHECK(parse_str(page, "", &t, &why) == HUB_OK);
    CHECK(t.count == 1 && t.skipped == 1);
    CHECK(t.count == 1 && strlen(t.entries[0].name) == 255);
    /* The quoted name is cut with "...". */
    CHECK(strncmp(why.line, "skipped entry 'xxxx", 19) == 0);
    CHECK(strstr(why.line, "...': bad name") != NULL);
    hub_tree_release(&t);

    /* A path over HUB_PATH_MAX is refused before its name is looked at. */
    {
        size_t cap = HUB_PATH_MAX + 128;
        char *long_page = malloc(cap);
        char *p;

        CHECK(long_page != NULL);
        if (long_page) {
            int n = snprintf(long_page, cap,
                             "[{\"type\":\"file\",\"size\":1,\"path\":\"d/");
            p = long_page + n;
            memset(p, 'x', HUB_PATH_MAX);
            p += HUB_PATH_MAX - 1; /* path: HUB_PATH_MAX + 1 bytes */
            snprintf(p, cap - (size_t)(p - long_page), "\"}]");
            hub_tree_init(&t);
            hub_why_clear(&why);
            CHECK(parse_str(long_page, "d", &t, &why) == HUB_OK);
            CHECK(t.count == 0 && t.skipped == 1);
            CHECK(strstr(why.line, "': path too long") != NULL);
            hub_tree_release(&t);
            free(long_page);
        }
    }

    /* Upper-case hex is folded; lfs.size wins over size. */
    hub_tree_init(&t);
    CHECK(parse_str("[{\"type\":\"file\",\"size\":134,\"path\":\"m\","
                    "\"oid\":\"9EB98C817F04B051B3BCCA591BCD4E03CEC88018\","
                    "\"lfs\":{\"oid\":\"A7A17D6D844B5DE815CCAB5F42CAD6D24496DB"
                    "3850A2A43D8258221018CE87D2\",\"size\":536063208}}]",
                    "", &t, NULL) == HUB_OK);
    e = find(&t, "m");
    CHECK(e && e->size == 536063208);
    CHECK(e && strcmp(e->oid, "9eb98c817f04b051b3bcca591bcd4e03cec88018") == 0);
    CHECK(e && strcmp(e->sha256, "a7a17d6d844b5de815ccab5f42cad6d24496db3850"
                                 "a2a43d8258221018ce87d2") == 0);
    hub_tree_release(&t);

    /* A 64-hex oid (sha256 git) is accepted; a directory's lfs ignored. */
    hub_tree_init(&t);
    CHECK(parse_str("[{\"type\":\"directory\",\"path\":\"d\",\"size\":0,"
                    "\"oid\":\"a7a17d6d844b5de815ccab5f42cad6d24496db3850a2a43"
                    "d8258221018ce87d2\",\"lfs\":5}]",
                    "", &t, NULL) == HUB_OK);
    CHECK(t.count == 1 && t.entries[0].is_dir && t.entries[0].sha256[0] == 0);
    CHECK(t.count == 1 && strlen(t.entries[0].oid) == 64);
    hub_tree_release(&t);

    /* Not an array, not JSON, empty: HUB_E_PROTOCOL, tree released. */
    {
        static const char *bad[] = {"{}",
                                    "",
                                    "[",
                                    "[{]",
                                    "null",
                                    "\"x\"",
                                    "[]]",
                                    "[] []",
                                    "[]x",
                                    " ",
                                    "{\"error\":\"x\"}",
                                    "42",
                                    "Temporary Redirect. Redirecting to /api"};
        for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
            hub_tree_init(&t);
            CHECK(parse_str(bert_root, "", &t, NULL) == HUB_OK);
            hub_why_clear(&why);
            CHECK(parse_str(bad[i], "", &t, &why) == HUB_E_PROTOCOL);
            CHECK(t.count == 0 && t.entries == NULL);
            CHECK(why.line[0] != '\0');
            hub_tree_release(&t);
        }
    }
    hub_tree_init(&t);
    CHECK(parse_str("[]", "", &t, NULL) == HUB_OK && t.count == 0);
    CHECK(parse_str(" [ ] \r\n", "", &t, NULL) == HUB_OK && t.count == 0);
    CHECK(hub_parse_tree_page(NULL, 0, "", &t, NULL) == HUB_E_PROTOCOL);
    /* Bad dir arguments. */
    CHECK(parse_str("[]", "/a", &t, NULL) == HUB_E_PROTOCOL);
    CHECK(parse_str("[]", "a/", &t, NULL) == HUB_E_PROTOCOL);
    CHECK(parse_str("[]", "a//b", &t, NULL) == HUB_E_PROTOCOL);
    CHECK(parse_str("[]", NULL, &t, NULL) == HUB_OK);
    /* A body over HUB_JSON_MAX_BYTES is refused before it is read. */
    CHECK(hub_parse_tree_page("[]", (size_t)HUB_JSON_MAX_BYTES + 1, "", &t,
                              NULL) == HUB_E_TOO_BIG);
    hub_tree_release(&t);
}

static void test_tree_pages_finish(void)
{
    struct hub_tree t;
    struct hub_why why;

    hub_tree_init(&t);
    hub_why_clear(&why);
    CHECK(parse_str("[{\"type\":\"directory\",\"path\":\"z\",\"size\":0},"
                    "{\"type\":\"file\",\"path\":\"b\",\"size\":1},"
                    "{\"type\":\"file\",\"path\":\"..\",\"size\":1},"
                    "{\"type\":\"file\",\"path\":\"a\",\"size\":2}]",
                    "", &t, &why) == HUB_OK);
    CHECK_STR(why.line, "skipped entry '..': bad name");
    /* Page 2: a duplicate of "b" (first seen wins) and a second skip whose
     * reason does not replace the first. */
    CHECK(parse_str("[{\"type\":\"file\",\"path\":\"b\",\"size\":99},"
                    "{\"type\":\"file\",\"path\":\"B\",\"size\":3},"
                    "{\"type\":\"link\",\"path\":\"q\",\"size\":3},"
                    "{\"type\":\"file\",\"path\":\"a\",\"size\":98},"
                    "{\"type\":\"file\",\"path\":\"b\",\"size\":97}]",
                    "", &t, &why) == HUB_OK);
    CHECK(t.count == 7);
    CHECK(t.skipped == 2);
    CHECK_STR(why.line, "skipped entry '..': bad name");
    hub_tree_finish(&t);
    CHECK(t.count == 4);
    CHECK(t.skipped == 5);
    if (t.count == 4) {
        CHECK_STR(t.entries[0].name, "B");
        CHECK_STR(t.entries[1].name, "a");
        CHECK(t.entries[1].size == 2);
        CHECK_STR(t.entries[2].name, "b");
        CHECK(t.entries[2].size == 1);
        CHECK_STR(t.entries[3].name, "z");
        CHECK(t.entries[3].is_dir);
    }
    /* Finishing again changes nothing. */
    hub_tree_finish(&t);
    CHECK(t.count == 4 && t.skipped == 5);
    hub_tree_release(&t);

    /* Stable on a bigger reversed input with many duplicates. */
    {
        char *page = malloc(200 * 64);
        size_t off = 0;
        bool sorted = true, first_kept = true;

        CHECK(page != NULL);
        if (!page)
            return;
        off += (size_t)snprintf(page + off, 64, "[");
        for (int i = 199; i >= 0; i--)
            off += (size_t)snprintf(page + off, 64,
                                    "%s{\"type\":\"file\",\"path\":\"n%03d\","
                                    "\"size\":%d}",
                                    i == 199 ? "" : ",", i % 50, i);
        snprintf(page + off, 4, "]");
        hub_tree_init(&t);
        CHECK(parse_str(page, "", &t, NULL) == HUB_OK);
        CHECK(t.count == 200);
        hub_tree_finish(&t);
        CHECK(t.count == 50 && t.skipped == 150);
        for (size_t i = 0; i < t.count; i++) {
            if (i > 0 && strcmp(t.entries[i - 1].name, t.entries[i].name) >= 0)
                sorted = false;
            /* names n000..n049; the first seen had the highest size */
            if (t.entries[i].size != 150 + i)
                first_kept = false;
        }
        CHECK(sorted);
        CHECK(first_kept);
        hub_tree_release(&t);
        free(page);
    }
}

static void test_tree_too_big(void)
{
    /* HUB_TREE_MAX_ENTRIES fits; one more is HUB_E_TOO_BIG and releases. */
    const size_t per = 64;
    size_t cap = (size_t)(HUB_TREE_MAX_ENTRIES + 1) * per + 16, off = 0;
    char *page = malloc(cap);
    struct hub_tree t;
    struct hub_why why;

    CHECK(page != NULL);
    if (!page)
        return;
    page[off++] = '[';
    for (int i = 0; i < HUB_TREE_MAX_ENTRIES; i++)
        off +=
            (size_t)snprintf(page + off, cap - off,
                             "%s{\"type\":\"file\",\"path\":\"%d\",\"size\":1}",
                             i ? "," : "", i);
    page[off] = ']';
    hub_tree_init(&t);
    CHECK(hub_parse_tree_page(page, off + 1, "", &t, NULL) == HUB_OK);
    CHECK(t.count == HUB_TREE_MAX_ENTRIES);
    hub_why_clear(&why);
    CHECK(parse_str("[{\"type\":\"file\",\"path\":\"one-more\",\"size\":1}]",
                    "", &t, &why) == HUB_E_TOO_BIG);
    CHECK(t.count == 0 && t.entries == NULL);
    CHECK(strstr(why.line, "more than") != NULL);
    hub_tree_release(&t);
    free(page);
}

/* ---- repo info, whoami, namespace listing ---- */

static void test_info(void)
{
    /* hub-api.md section 2, the real exchange (trimmed there too). */
    static const char bert[] =
        "{\"_id\":\"621ffdc036468d709f174338\",\"id\":\"google-bert/bert-base-"
        "uncased\",\"private\":false,\"sha\":\"86b5e0934494bd15c9632b12f734a8a6"
        "7f723594\",\"lastModified\":\"2024-02-19T11:06:12.000Z\",\"gated\":"
        "false,\"disabled\":false,\"siblings\":[{\"rfilename\":\".gitattribute"
        "s\"}],\"createdAt\":\"2022-03-02T23:29:04.000Z\",\"usedStorage\":"
        "12904182200}";
    static const struct {
        const char *json;
        enum hub_err err;
        const char *id;
        const char *sha;
        int64_t mtime;
        bool is_private;
        int gated;
        bool disabled;
    } cases[] = {
        {bert, HUB_OK, "google-bert/bert-base-uncased",
         "86b5e0934494bd15c9632b12f734a8a67f723594", 1708340772, false, 0,
         false},
        {"{\"sha\":\"86B5E0934494BD15C9632B12F734A8A67F723594\"}", HUB_OK, "",
         "86b5e0934494bd15c9632b12f734a8a67f723594", 0, false, 0, false},
        {"{\"id\":\"gpt2\",\"sha\":"
         "\"1111111111111111111111111111111111111111\","
         "\"private\":true,\"gated\":\"auto\",\"disabled\":true}",
         HUB_OK, "gpt2", "1111111111111111111111111111111111111111", 0, true, 1,
         true},
        {"{\"id\":\"meta-llama/Llama-3.1-8B-Instruct\",\"sha\":\"22222222222222"
         "22222222222222222222222222\",\"gated\":\"manual\"}",
         HUB_OK, "meta-llama/Llama-3.1-8B-Instruct",
         "2222222222222222222222222222222222222222", 0, false, 2, false},
        {"{\"sha\":\"2222222222222222222222222222222222222222\",\"gated\":"
         "true}",
         HUB_OK, "", "2222222222222222222222222222222222222222", 0, false, 2,
         false},
        {"{\"sha\":\"2222222222222222222222222222222222222222\",\"gated\":"
         "\"x\"}",
         HUB_OK, "", "2222222222222222222222222222222222222222", 0, false, 2,
         false},
        {"{\"sha\":\"2222222222222222222222222222222222222222\",\"gated\":null,"
         "\"lastModified\":\"yesterday\",\"private\":\"yes\"}",
         HUB_OK, "", "2222222222222222222222222222222222222222", 0, false, 0,
         false},
        {"{\"id\":\"a/b\"}", HUB_E_PROTOCOL, "", "", 0, false, 0, false},
        {"{\"sha\":\"86b5e0934494bd15c9632b12f734a8a67f72359\"}",
         HUB_E_PROTOCOL, "", "", 0, false, 0, false},
        {"{\"sha\":\"86b5e0934494bd15c9632b12f734a8a67f72359g\"}",
         HUB_E_PROTOCOL, "", "", 0, false, 0, false},
        {"{\"sha\":\"86b5e0934494bd15c9632b12f734a8a67f72359\\u0000\"}",
         HUB_E_PROTOCOL, "", "", 0, false, 0, false},
        {"{\"sha\":42}", HUB_E_PROTOCOL, "", "", 0, false, 0, false},
        {"{\"id\":\"../"
         "etc\",\"sha\":\"2222222222222222222222222222222222222222\"}",
         HUB_E_PROTOCOL, "", "", 0, false, 0, false},
        {"{\"id\":\"a/b/"
         "c\",\"sha\":\"2222222222222222222222222222222222222222\"}",
         HUB_E_PROTOCOL, "", "", 0, false, 0, false},
        {"{\"id\":5,\"sha\":\"2222222222222222222222222222222222222222\"}",
         HUB_E_PROTOCOL, "", "", 0, false, 0, false},
        {"[]", HUB_E_PROTOCOL, "", "", 0, false, 0, false},
        {"", HUB_E_PROTOCOL, "", "", 0, false, 0, false},
        {"{\"error\":\"Repository not found\"}", HUB_E_PROTOCOL, "", "", 0,
         false, 0, false},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct hub_info info;
        enum hub_err err;

        memset(&info, 0x5a, sizeof(info));
        err = hub_parse_info(cases[i].json, strlen(cases[i].json), &info);
        if (err != cases[i].err)
            fprintf(stderr, "hub_parse_info case %zu\n", i);
        CHECK(err == cases[i].err);
        CHECK_STR(info.id, cases[i].id);
        CHECK_STR(info.sha, cases[i].sha);
        CHECK(info.mtime == cases[i].mtime);
        CHECK(info.is_private == cases[i].is_private);
        CHECK(info.gated == cases[i].gated);
        CHECK(info.disabled == cases[i].disabled);
    }
}

static void test_whoami(void)
{
    /* hub-api.md section 6, the real fine-grained answer. */
    static const char fg[] =
        "{\"type\":\"user\",\"id\":\"6a61ec32\",\"name\":\"alice\",\"orgs\":[],"
        "\"auth\":{\"type\":\"access_token\",\"accessToken\":{\"displayName\":"
        "\"deployment\",\"role\":\"fineGrained\",\"createdAt\":\"2026-07-23T10:"
        "27:03.276Z\",\"fineGrained\":{\"canReadGatedRepos\":true,\"global\":["
        "\"discussion.write\",\"post.write\"],\"scoped\":[{\"entity\":{\"_id\":"
        "\"6a61ec32\",\"type\":\"user\",\"name\":\"alice\"},\"permissions\":["
        "\"repo.content.read\",\"repo.access.read\",\"repo.write\"]}]}}}}";
    static const struct {
        const char *json;
        enum hub_err err;
        const char *name, *type, *role;
        bool fine, gated;
    } cases[] = {
        {fg, HUB_OK, "alice", "user", "fineGrained", true, true},
        {"{\"type\":\"user\",\"name\":\"alice\",\"auth\":{\"type\":\"access_"
         "token\",\"accessToken\":{\"role\":\"fineGrained\",\"fineGrained\":"
         "{\"canReadGatedRepos\":false}}}}",
         HUB_OK, "alice", "user", "fineGrained", true, false},
        {"{\"type\":\"user\",\"name\":\"alice\",\"auth\":{\"accessToken\":{"
         "\"role\":\"fineGrained\",\"fineGrained\":{}}}}",
         HUB_OK, "alice", "user", "fineGrained", true, false},
        {"{\"type\":\"user\",\"name\":\"bob\",\"auth\":{\"type\":\"access_"
         "token\",\"accessToken\":{\"displayName\":\"x\",\"role\":\"read\"}}}",
         HUB_OK, "bob", "user", "read", false, false},
        {"{\"type\":\"org\",\"name\":\"acme\"}", HUB_OK, "acme", "org", "",
         false, false},
        {"{\"name\":\"carol\",\"auth\":[1]}", HUB_OK, "carol", "", "", false,
         false},
        {"{\"type\":\"user\"}", HUB_E_PROTOCOL, "", "", "", false, false},
        /* fuzz_info crasher: an empty (first, duplicated) name */
        {"{\"type\":\"user\",\"name\":\"\",\"name\":\"bob\"}", HUB_E_PROTOCOL,
         "", "", "", false, false},
        {"{\"name\":\"bob\"} x", HUB_E_PROTOCOL, "", "", "", false, false},
        {"{\"name\":\"bob\"}}", HUB_E_PROTOCOL, "", "", "", false, false},
        {" {\"name\":\"bob\"}\r\n", HUB_OK, "bob", "", "", false, false},
        {"{\"name\":7}", HUB_E_PROTOCOL, "", "", "", false, false},
        {"{\"name\":\"a\\nb\"}", HUB_E_PROTOCOL, "", "", "", false, false},
        {"{\"name\":\"a\",\"type\":\"averyveryverylongtype\"}", HUB_E_PROTOCOL,
         "", "", "", false, false},
        {"{\"name\":\"a\",\"auth\":{\"accessToken\":{\"role\":5}}}",
         HUB_E_PROTOCOL, "", "", "", false, false},
        {"{\"error\":\"Invalid username or password.\"}", HUB_E_PROTOCOL, "",
         "", "", false, false},
        {"not json", HUB_E_PROTOCOL, "", "", "", false, false},
    };
    char big[1200];

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct hub_whoami w;
        enum hub_err err;

        memset(&w, 0x5a, sizeof(w));
        err = hub_parse_whoami(cases[i].json, strlen(cases[i].json), &w);
        if (err != cases[i].err)
            fprintf(stderr, "hub_parse_whoami case %zu\n", i);
        CHECK(err == cases[i].err);
        CHECK_STR(w.name, cases[i].name);
        CHECK_STR(w.type, cases[i].type);
        CHECK_STR(w.role, cases[i].role);
        CHECK(w.fine_grained == cases[i].fine);
        CHECK(w.can_read_gated == cases[i].gated);
    }
    {
        struct hub_whoami w;
        snprintf(big, sizeof(big), "{\"name\":\"%s\"}", repeat('n', 127));
        CHECK(hub_parse_whoami(big, strlen(big), &w) == HUB_OK);
        snprintf(big, sizeof(big), "{\"name\":\"%s\"}", repeat('n', 128));
        CHECK(hub_parse_whoami(big, strlen(big), &w) == HUB_E_PROTOCOL);
    }
}

static void test_repo_list(void)
{
    static const char page[] =
        "[{\"_id\":\"1\",\"id\":\"acme/tiny\"},{\"id\":\"acme/private\"},"
        "{\"id\":\"other/x\"},{\"id\":\"acme/\"},{\"id\":\"acme/a/b\"},"
        "{\"id\":\"acme/..\"},{\"id\":\"ACME/Upper\"},{\"id\":\"acmex/y\"},"
        "{\"x\":1},[],{\"id\":\"acme/a\\u0000b\"},{\"id\":\"acme\"},"
        "{\"id\":\"evil/x\"}]";
    struct hub_tree t;
    struct hub_why why;

    hub_tree_init(&t);
    hub_why_clear(&why);
    CHECK(hub_parse_repo_list(page, strlen(page), "acme", &t, &why) == HUB_OK);
    hub_tree_finish(&t);
    CHECK(t.count == 3);
    CHECK(t.skipped == 10);
    CHECK(find(&t, "tiny") && find(&t, "tiny")->is_dir);
    CHECK(find(&t, "private") && find(&t, "private")->size == 0);
    CHECK(find(&t, "Upper") != NULL);
    CHECK_STR(why.line, "skipped entry 'other/x': not in namespace 'acme'");
    hub_tree_release(&t);

    hub_tree_init(&t);
    CHECK(hub_parse_repo_list("{}", 2, "acme", &t, NULL) == HUB_E_PROTOCOL);
    CHECK(hub_parse_repo_list("[]", 2, "acme", &t, NULL) == HUB_OK);
    CHECK(t.count == 0);
    CHECK(hub_parse_repo_list("[]", 2, "../x", &t, NULL) == HUB_E_PROTOCOL);
    CHECK(hub_parse_repo_list("[]", 2, "", &t, NULL) == HUB_E_PROTOCOL);
    CHECK(hub_parse_repo_list("[{\"id\":\"acme/a\"}", 15, "acme", &t, NULL) ==
          HUB_E_PROTOCOL);
    hub_tree_release(&t);
}

/* ---- NO_PROXY ---- */

static void test_no_proxy_match(void)
{
    static const struct {
        const char *list;
        const char *host;
        bool match;
    } cases[] = {
        /* names: itself and its subdomains, any case */
        {"example.com", "example.com", true},
        {"example.com", "EXAMPLE.com", true},
        {"Example.COM", "example.com", true},
        {"example.com", "api.example.com", true},
        {"example.com", "a.b.example.com", true},
        {"example.com", "badexample.com", false},
        {"example.com", "example.com.evil", false},
        {"example.com", "com", false},
        {"api.example.com", "example.com", false},
        {"localhost", "localhost", true},
        {"localhost", "127.0.0.1", false},
        /* leading and trailing dots */
        {".example.com", "example.com", true},
        {".example.com", "cdn.example.com", true},
        {"example.com.", "example.com", true},
        {"example.com", "example.com.", true},
        {"example.com", "cdn.example.com.", true},
        /* a stripped entry's tail is no entry of its own */
        {".example.com", "m", false},
        {".hf.co", "o", false},
        {"[::1]", "1]", false},
        {".", "a", false},
        /* '*': every host, but no wildcard inside a name */
        {"*", "anything", true},
        {"*", "10.0.0.1", true},
        {"*", "[::1]", true},
        {"foo, *", "x", true},
        {".*", "x", true},
        {"*.example.com", "a.example.com", false},
        {"*", "", false},
        /* IPv4, exact */
        {"127.0.0.1", "127.0.0.1", true},
        {"127.0.0.1", "127.0.0.1.", true},
        {"127.0.0.1", "127.0.0.2", false},
        {"127.0.0.1", "localhost", false},
        {"127.0.0.1", "::1", false},
        {"::ffff:127.0.0.1", "127.0.0.1", false},
        /* IPv4, CIDR (host bits of the entry ignored) */
        {"10.0.0.0/8", "10.255.1.2", true},
        {"10.0.0.0/8", "11.0.0.1", false},
        {"10.1.2.3/8", "10.9.9.9", true},
        {"127.0.0.0/8", "127.0.0.1", true},
        {"192.168.1.0/24", "192.168.1.77", true},
        {"192.168.1.0/24", "192.168.2.1", false},
        {"192.168.0.0/23", "192.168.1.5", true},
        {"192.168.0.0/23", "192.168.2.5", false},
        {"0.0.0.0/0", "8.8.8.8", true},
        {"1.2.3.4/32", "1.2.3.4", true},
        {"1.2.3.4/32", "1.2.3.5", false},
        {"10.0.0.0/8", "10.example.com", false},
        /* IPv6, exact: by address, brackets optional on either side */
        {"::1", "::1", true},
        {"::1", "[::1]", true},
        {"[::1]", "::1", true},
        {"[::1]", "[::1]", true},
        {"::1", "0:0:0:0:0:0:0:1", true},
        {"::1", "::2", false},
        {"::1", "127.0.0.1", false},
        {"FD00::1", "fd00::1", true},
        /* IPv6, CIDR */
        {"fd00::/8", "fd12:3456::1", true},
        {"fd00::/8", "fe80::1", false},
        {"2001:db8::/32", "[2001:db8:1::5]", true},
        {"2001:db8::/32", "2001:db9::1", false},
        {"fe80::/10", "febf::1", true},
        {"fe80::/10", "fec0::1", false},
        {"::/0", "::1", true},
        {"[fd00::]/8", "fd00::1", false}, /* brackets around the address only */
        /* bad entries match nothing, and do not stop the list */
        {"10.0.0.0/33", "10.0.0.1", false},
        {"10.0.0.0/-1", "10.0.0.1", false},
        {"10.0.0.0/", "10.0.0.1", false},
        {"10.0.0.0/8x", "10.0.0.1", false},
        {"10.0.0.0/ 8", "10.0.0.1", false},
        {"/8", "10.0.0.1", false},
        {"10.0.0/8", "10.0.0.1", false},
        {"::1/129", "::1", false},
        {"[::1", "::1", false},
        {"[]", "x", false},
        {"10.0.0.0/99, bogus/x, [, example.com", "example.com", true},
        {"10.0.0.0/99, bogus/x, 10.0.0.0/8", "10.0.0.1", true},
        /* separators: commas, blanks, tabs, any run of them */
        {"a.com,b.com", "b.com", true},
        {"a.com b.com", "b.com", true},
        {"a.com\tb.com", "b.com", true},
        {"a.com, b.com", "b.com", true},
        {" , ,a.com,, ,", "a.com", true},
        {"a.com;b.com", "b.com", false},
        {"a.com\nb.com", "b.com", false},
        {"", "a.com", false},
        {" , \t", "a.com", false},
        /* hosts that are no host */
        {"*", ".", false},
        {"*", "[]", false},
        {"*", "[::1", false},
    };
    char entry[HUB_NO_PROXY_ENTRY_MAX + 1];
    char host[HUB_NO_PROXY_ENTRY_MAX + 64];

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        bool got = hub_no_proxy_match(cases[i].list, cases[i].host);
        if (got != cases[i].match)
            fprintf(stderr, "no_proxy case %zu: '%s' vs '%s'\n", i,
                    cases[i].list, cases[i].host);
        CHECK(got == cases[i].match);
    }
    CHECK(!hub_no_proxy_match(NULL, "a.com"));
    CHECK(!hub_no_proxy_match("*", NULL));

    /* An entry of HUB_NO_PROXY_ENTRY_MAX bytes is ignored, one less is
     * not; a host has no such bound. */
    memset(entry, 'a', HUB_NO_PROXY_ENTRY_MAX);
    entry[HUB_NO_PROXY_ENTRY_MAX] = '\0';
    CHECK(!hub_no_proxy_match(entry, entry));
    entry[HUB_NO_PROXY_ENTRY_MAX - 1] = '\0';
    CHECK(hub_no_proxy_match(entry, entry));
    snprintf(host, sizeof(host), "%s.example.com", entry);
    CHECK(hub_no_proxy_match("example.com", host));
    CHECK(hub_no_proxy_match(".example.com", host));
    CHECK(!hub_no_proxy_match("other.com", host));
}

int main(void)
{
    test_name_ok();
    test_repo_part_ok();
    test_rev_ok();
    test_repo_spec();
    test_repo_type_plural();
    test_parse_size();
    test_url_escape();
    test_no_proxy_match();
    test_iso8601();
    test_ratelimit();
    test_retry_after();
    test_content_range();
    test_link_next();
    test_tree_bert();
    test_tree_subdir();
    test_tree_hostile();
    test_tree_details();
    test_tree_pages_finish();
    test_tree_too_big();
    test_info();
    test_whoami();
    test_repo_list();
    return check_done("test_hub_parse");
}
