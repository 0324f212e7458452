/*
 * Fuzz target: the key file reader (watermark/key.c, cm_key_load), on an
 * in-memory file of mode 0600 (the loader refuses looser files before it
 * parses). A key that loads must give a fingerprint and a public key, and
 * a delegated one a chain of certificates that verify.
 */
#include "fuzz_util.h"

#include "celmark/key.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_file f;
    fuzz_file_make(&f, data, size, 0600);
    cm_ctx *ctx = NULL;
    if (cm_ctx_new(&ctx))
        abort();
    cm_key *key = NULL;
    if (cm_key_load(ctx, f.path, &key) == CM_OK) {
        char fp[CM_KEY_FINGERPRINT_CHARS + 1];
        uint8_t pub[CM_KEY_PUBLIC_BYTES];
        if (!key || cm_key_fingerprint(key, fp) || cm_key_public(key, pub))
            abort();
        /* a delegated key loads only with a chain that holds: every
         * certificate verifies and survives an encode/decode round trip */
        int n = -1;
        const cm_key_cert *chain = cm_key_chain(key, &n);
        if (n != cm_key_layer(key) || n < 0 || n > CM_KEY_MAX_LAYER)
            abort();
        for (int i = 0; i < n; i++) {
            uint8_t buf[CM_KEY_CERT_MAX];
            cm_key_cert back;
            int len = cm_key_cert_encode(&chain[i], buf, sizeof(buf));
            if (!cm_key_cert_ok(&chain[i]) || len <= 0 ||
                cm_key_cert_decode(buf, (size_t)len, &back) ||
                memcmp(&back, &chain[i], sizeof(back)))
                abort();
        }
    } else if (key || !cm_ctx_last_error(ctx)[0]) {
        abort();
    }
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    fuzz_file_free(&f);
    return 0;
}
