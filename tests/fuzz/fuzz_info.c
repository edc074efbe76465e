/*
 * fuzz_info.c - libFuzzer target for hub_parse_info(), hub_parse_whoami(),
 * hub_parse_repo_list() and hub_parse_iso8601(): the input is one JSON body
 * (and, as a string, one date). Aborts when an accepted answer holds an
 * unchecked sha, id, name or gate value, or a refused one leaves output.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/hub_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_info(const struct hub_info *info)
{
    if (strlen(info->sha) != 40)
        abort();
    for (const char *p = info->sha; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            abort();
    if (strnlen(info->id, sizeof(info->id)) == sizeof(info->id))
        abort();
    for (const char *p = info->id; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
    if (info->gated < 0 || info->gated > 2)
        abort();
}

static void check_whoami(const struct hub_whoami *w)
{
    if (!w->name[0] || strnlen(w->name, sizeof(w->name)) == sizeof(w->name) ||
        strnlen(w->type, sizeof(w->type)) == sizeof(w->type) ||
        strnlen(w->role, sizeof(w->role)) == sizeof(w->role))
        abort();
    if (w->fine_grained != (strcmp(w->role, "fineGrained") == 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct hub_whoami who;
    struct hub_info info;
    struct hub_tree tree;
    int64_t t = 7;
    char *s;

    if (hub_parse_info(buf, size, &info) == HUB_OK)
        check_info(&info);
    else if (info.sha[0] || info.id[0])
        abort();

    if (hub_parse_whoami(buf, size, &who) == HUB_OK)
        check_whoami(&who);
    else if (who.name[0] || who.role[0])
        abort();

    hub_tree_init(&tree);
    if (hub_parse_repo_list(buf, size, "acme", &tree, NULL) == HUB_OK) {
        for (size_t i = 0; i < tree.count; i++)
            if (!tree.entries[i].is_dir ||
                !hub_name_ok(tree.entries[i].name,
                             strlen(tree.entries[i].name)))
                abort();
        hub_tree_finish(&tree);
    } else if (tree.count || tree.entries) {
        abort();
    }
    hub_tree_release(&tree);

    s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (!hub_parse_iso8601(s, &t) && t != 0)
        abort();
    free(s);
    return 0;
}
