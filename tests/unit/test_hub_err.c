/*
 * test_hub_err.c - unit tests of net/hub_err.c: classification of every row
 * of hub-api.md section 5 (real Hub statuses, codes and messages), CDN
 * answers, the errno map, hub_strerror() and struct hub_why. No network.
 */
#include "net/hub_err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Every code, for the tables below (append when hub_err.h grows). */
static const enum hub_err all_errs[] = {
    HUB_OK,         HUB_E_NOT_FOUND,    HUB_E_NO_TOKEN, HUB_E_SCOPE,
    HUB_E_GATED,    HUB_E_RATE_LIMITED, HUB_E_SERVER,   HUB_E_NETWORK,
    HUB_E_PROTOCOL, HUB_E_TOO_BIG,      HUB_E_NOMEM,    HUB_E_DENIED,
    HUB_E_OFFLINE,  HUB_E_EXPIRED,      HUB_E_RANGE,
};

#define GATED_401                                                              \
    "Access to model meta-llama/Llama-3.1-8B-Instruct is restricted. You "     \
    "must "                                                                    \
    "have access to it and be authenticated to access it. Please log in."
#define GATED_403                                                              \
    "Access to model meta-llama/Llama-3.1-8B-Instruct is restricted and you "  \
    "are not in the authorized list. Visit https://huggingface.co/meta-llama/" \
    "Llama-3.1-8B-Instruct to ask for access."
#define GATED_PENDING                                                          \
    "Your request to access model meta-llama/Llama-3.1-8B-Instruct is "        \
    "awaiting a review from the repo authors."
#define SCOPE_403                                                              \
    "Please enable access to public gated repositories in your fine-grained "  \
    "token settings to view this repository."
#define ORG_POLICY                                                             \
    "Due to the organization token policy, your token needs to be approved "   \
    "by the organization before you can access this resource."
#define ORG_REVOKED                                                            \
    "Your token has been revoked by the organization administrator, you can "  \
    "no longer access organization resources. Please contact them for more "   \
    "information."

static void test_classify(void)
{
    static const struct {
        int status;
        const char *code, *message;
        bool had_token, hub_origin;
        enum hub_err want;
    } cases[] = {
        /* hub-api.md section 5, row by row */
        {401, NULL, "Invalid username or password.", false, true,
         HUB_E_NO_TOKEN},
        {404, "RepoNotFound", "Repository not found", true, true,
         HUB_E_NOT_FOUND},
        {401, NULL, "Invalid credentials in Authorization header", true, true,
         HUB_E_DENIED},
        {404, "RevisionNotFound", "Invalid rev id: nope", false, true,
         HUB_E_NOT_FOUND},
        {404, "EntryNotFound", "Entry not found", true, true, HUB_E_NOT_FOUND},
        {401, "GatedRepo", GATED_401, false, true, HUB_E_NO_TOKEN},
        {403, "GatedRepo", GATED_403, true, true, HUB_E_GATED},
        {403, "GatedRepo", GATED_PENDING, true, true, HUB_E_GATED},
        {403, NULL, SCOPE_403, true, true, HUB_E_SCOPE},
        {403, NULL, "Access to this resource is disabled.", false, true,
         HUB_E_DENIED},
        {403, NULL, ORG_POLICY, true, true, HUB_E_DENIED},
        {403, NULL, ORG_REVOKED, true, true, HUB_E_DENIED},
        {403, NULL, NULL, true, true, HUB_E_DENIED},
        /* revoked token on whoami-v2 */
        {401, NULL, "Invalid username or password.", true, true, HUB_E_DENIED},
        /* the scope sentence wins even if tagged GatedRepo */
        {403, "GatedRepo", SCOPE_403, true, true, HUB_E_SCOPE},
        {403, "", SCOPE_403, true, true, HUB_E_SCOPE},
        /* 401 without code */
        {401, NULL, NULL, false, true, HUB_E_NO_TOKEN},
        {401, "", NULL, false, true, HUB_E_NO_TOKEN},
        {401, NULL, NULL, true, true, HUB_E_DENIED},
        {401, "RepoNotFound", "Repository not found", false, true,
         HUB_E_NO_TOKEN},
        {401, "RepoNotFound", "Repository not found", true, true, HUB_E_DENIED},
        {401, "SomethingNew", NULL, false, true, HUB_E_DENIED},
        {401, NULL, "Invalid credentials in Authorization header", false, true,
         HUB_E_DENIED},
        {401, NULL, "Access to this resource is disabled.", false, true,
         HUB_E_DENIED},
        /* code order: RevisionNotFound / EntryNotFound first */
        {403, "RevisionNotFound", NULL, true, true, HUB_E_NOT_FOUND},
        {401, "EntryNotFound", NULL, false, true, HUB_E_NOT_FOUND},
        {400, "RepoNotFound", NULL, true, true, HUB_E_NOT_FOUND},
        {403, "RepoNotFound", NULL, true, true, HUB_E_NOT_FOUND},
        /* 404 any code */
        {404, NULL, NULL, false, true, HUB_E_NOT_FOUND},
        {404, "GatedRepo", NULL, true, true, HUB_E_NOT_FOUND},
        {404, "Whatever", "x", true, true, HUB_E_NOT_FOUND},
        /* statuses */
        {429, NULL, NULL, true, true, HUB_E_RATE_LIMITED},
        {429, "GatedRepo", NULL, true, true, HUB_E_RATE_LIMITED},
        {500, NULL, NULL, true, true, HUB_E_SERVER},
        {502, NULL, NULL, true, true, HUB_E_SERVER},
        {503, NULL, NULL, true, true, HUB_E_SERVER},
        {504, NULL, NULL, true, true, HUB_E_SERVER},
        {599, NULL, NULL, true, true, HUB_E_SERVER},
        {408, NULL, NULL, true, true, HUB_E_SERVER},
        {416, NULL, NULL, true, true, HUB_E_RANGE},
        {400, NULL, NULL, true, true, HUB_E_PROTOCOL},
        {405, NULL, NULL, true, true, HUB_E_PROTOCOL},
        {410, NULL, NULL, true, true, HUB_E_PROTOCOL},
        {499, NULL, NULL, true, true, HUB_E_PROTOCOL},
        {301, NULL, NULL, true, true, HUB_E_PROTOCOL},
        {302, NULL, NULL, true, false, HUB_E_PROTOCOL},
        {307, NULL, NULL, true, true, HUB_E_PROTOCOL},
        {304, NULL, NULL, true, true, HUB_E_PROTOCOL},
        {200, NULL, NULL, true, true, HUB_OK},
        {206, NULL, NULL, false, false, HUB_OK},
        {204, "GatedRepo", "x", false, true, HUB_OK},
        {100, NULL, NULL, true, true, HUB_E_PROTOCOL},
        {0, NULL, NULL, true, true, HUB_E_PROTOCOL},
        {-1, NULL, NULL, true, true, HUB_E_PROTOCOL},
        {600, NULL, NULL, true, true, HUB_E_PROTOCOL},
        {999, NULL, NULL, true, true, HUB_E_PROTOCOL},
        /* off the Hub (CDN): codes mean nothing; 403/410 = expired URL */
        {403, NULL, NULL, false, false, HUB_E_EXPIRED},
        {410, NULL, NULL, false, false, HUB_E_EXPIRED},
        {403, "GatedRepo", SCOPE_403, true, false, HUB_E_EXPIRED},
        {404, NULL, NULL, false, false, HUB_E_NOT_FOUND},
        {401, NULL, NULL, false, false, HUB_E_DENIED},
        {416, NULL, NULL, false, false, HUB_E_RANGE},
        {429, NULL, NULL, false, false, HUB_E_RATE_LIMITED},
        {503, NULL, NULL, false, false, HUB_E_SERVER},
        {400, NULL, NULL, false, false, HUB_E_PROTOCOL},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        enum hub_err got =
            hub_err_classify(cases[i].status, cases[i].code, cases[i].message,
                             cases[i].had_token, cases[i].hub_origin);
        if (got != cases[i].want)
            fprintf(stderr, "classify case %zu (%d %s): got %s, want %s\n", i,
                    cases[i].status, cases[i].code ? cases[i].code : "-",
                    hub_strerror(got), hub_strerror(cases[i].want));
        CHECK(got == cases[i].want);
    }
    /* 2xx never fails, whatever else rides along. */
    for (int s = 200; s <= 299; s++)
        CHECK(hub_err_classify(s, "GatedRepo", SCOPE_403, false, false) ==
              HUB_OK);
}

static void test_errno(void)
{
    static const struct {
        enum hub_err err;
        int want;
    } cases[] = {
        {HUB_OK, 0},
        {HUB_E_NOT_FOUND, -ENOENT},
        {HUB_E_NO_TOKEN, -EACCES},
        {HUB_E_SCOPE, -EACCES},
        {HUB_E_GATED, -EACCES},
        {HUB_E_RATE_LIMITED, -EIO},
        {HUB_E_SERVER, -EIO},
        {HUB_E_NETWORK, -EIO},
        {HUB_E_PROTOCOL, -EIO},
        {HUB_E_TOO_BIG, -EFBIG},
        {HUB_E_NOMEM, -ENOMEM},
        {HUB_E_DENIED, -EACCES},
        {HUB_E_OFFLINE, -ENOENT},
        {HUB_E_EXPIRED, -EIO},
        {HUB_E_RANGE, -EIO},
    };

    CHECK(ARRAY_LEN(cases) == ARRAY_LEN(all_errs));
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        CHECK(hub_err_to_errno(cases[i].err) == cases[i].want);
}

static void test_strerror(void)
{
    static const struct {
        enum hub_err err;
        const char *want;
    } exact[] = {
        {HUB_E_NOT_FOUND, "not found"},
        {HUB_E_NO_TOKEN, "no token"},
        {HUB_E_RATE_LIMITED, "rate limited"},
        {HUB_E_NOMEM, "out of memory"},
    };

    for (size_t i = 0; i < ARRAY_LEN(exact); i++)
        CHECK_STR(hub_strerror(exact[i].err), exact[i].want);
    for (size_t i = 0; i < ARRAY_LEN(all_errs); i++) {
        const char *s = hub_strerror(all_errs[i]);
        bool lower = true;

        CHECK(s != NULL && s[0] != '\0');
        if (!s)
            continue;
        for (const char *p = s; *p; p++)
            if (isupper((unsigned char)*p))
                lower = false;
        CHECK(lower);
        CHECK(s[strlen(s) - 1] != '.');
        /* distinct phrases */
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(s, hub_strerror(all_errs[j])) != 0);
    }
    CHECK(hub_strerror((enum hub_err)999) != NULL);
}

static void test_retryable(void)
{
    static const int yes[] = {408, 429, 500, 502, 503, 504};
    static const int no[] = {0,   200, 206, 301, 400, 401, 403,
                             404, 410, 416, 501, 505, 599};

    for (size_t i = 0; i < ARRAY_LEN(yes); i++)
        CHECK(hub_status_retryable(yes[i]));
    for (size_t i = 0; i < ARRAY_LEN(no); i++)
        CHECK(!hub_status_retryable(no[i]));
}

static void test_why(void)
{
    struct hub_why why;
    char big[HUB_WHY_LINE_MAX * 2];

    memset(&why, 0x5a, sizeof(why));
    hub_why_clear(&why);
    CHECK(why.status == 0 && why.code[0] == 0 && why.message[0] == 0 &&
          why.request_id[0] == 0 && why.line[0] == 0);
    hub_why_clear(NULL);
    hub_why_set(NULL, "ignored %d", 1);

    hub_why_set(&why, "HTTP %d after %d tries", 503, 5);
    CHECK_STR(why.line, "HTTP 503 after 5 tries");
    hub_why_set(&why, "cannot read '%s'",
                "a\nb\x01"
                "c\x7f");
    CHECK_STR(why.line, "cannot read 'a?b?c?'");
    /* Keeps UTF-8 as is. */
    hub_why_set(&why, "%s", "\xc3\xa9");
    CHECK_STR(why.line, "\xc3\xa9");

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    hub_why_set(&why, "%s", big);
    CHECK(strlen(why.line) == HUB_WHY_LINE_MAX - 1);
}

int main(void)
{
    test_classify();
    test_errno();
    test_strerror();
    test_retryable();
    test_why();
    return check_done("test_hub_err");
}
