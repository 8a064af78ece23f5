/* storage_s3.c - placeholder until the S3 backend lands: refuses s3:// URLs
 * with a clear sentence instead of failing to link. */
#include "storage.h"

static o7_rc s3_open(const o7_conf *conf, o7_storage **out, o7_err *err)
{
    (void)out;
    return o7_fail(err, O7_ERR_CONFIG, "storage url %s: the S3 backend is not built yet",
                   conf->storage_url);
}

const struct o7_storage_ops o7_storage_s3_ops = {.scheme = "s3", .open = s3_open};
