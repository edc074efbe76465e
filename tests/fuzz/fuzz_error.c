/*
 * fuzz_error.c - libFuzzer target for hub_err_classify(), hub_strerror(),
 * hub_err_to_errno() and hub_why_set(). Input: 2 bytes of status (big
 * endian, so any int 0..65535 is reachable), 1 byte of flags (bit 0
 * had_token, bit 1 hub_origin, bit 2 code absent, bit 3 message absent),
 * then "code\nmessage". Aborts when 2xx is not HUB_OK, an error is
 * HUB_OK, a value is out of the enum, or the why line is not one printable
 * line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/hub_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *code, *message;
    struct hub_why why;
    enum hub_err err;
    char *rest, *nl;
    int status, e;
    uint8_t flags;

    if (size < 3)
        return 0;
    status = (data[0] << 8) | data[1];
    flags = data[2];
    rest = malloc(size - 3 + 1);
    if (!rest)
        return 0;
    memcpy(rest, data + 3, size - 3);
    rest[size - 3] = '\0';
    nl = strchr(rest, '\n');
    if (nl) {
        *nl = '\0';
        message = nl + 1;
    } else {
        message = "";
    }
    code = (flags & 4) ? NULL : rest;
    if (flags & 8)
        message = NULL;

    err = hub_err_classify(status, code, message, flags & 1, flags & 2);
    if ((int)err < (int)HUB_OK || (int)err > (int)HUB_E_RANGE)
        abort();
    if ((status >= 200 && status <= 299) != (err == HUB_OK))
        abort();
    if (!hub_strerror(err) || !hub_strerror(err)[0])
        abort();
    e = hub_err_to_errno(err);
    if (e > 0 || (e == 0) != (err == HUB_OK))
        abort();
    (void)hub_status_retryable(status);

    hub_why_clear(&why);
    hub_why_set(&why, "HTTP %d %s: %s", status, code ? code : "-",
                message ? message : "-");
    if (strnlen(why.line, sizeof(why.line)) == sizeof(why.line))
        abort();
    for (const char *p = why.line; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
    free(rest);
    return 0;
}
