/* test_s3_plan.c - the S3 backend's multipart plan, its XML scanner and
 * the checks it makes when opening, without a server. */
#include "check.h"
#include "storage.h"
#include "storage_s3.h"

#include <stdlib.h>

#define MIB (1024LL * 1024)

TEST(part_size_doubles_every_thousand_parts)
{
    CHECK_INT(o7_s3_part_size(8 * MIB, 1), 8 * MIB);
    CHECK_INT(o7_s3_part_size(8 * MIB, 1000), 8 * MIB);
    CHECK_INT(o7_s3_part_size(8 * MIB, 1001), 16 * MIB);
    CHECK_INT(o7_s3_part_size(8 * MIB, 2001), 32 * MIB);
    CHECK_INT(o7_s3_part_size(8 * MIB, 10000), 8 * MIB * 512);
    /* Never above S3's 5 GiB part. */
    CHECK_INT(o7_s3_part_size(1024 * MIB, 10000), O7_S3_MAX_PART);
}

TEST(plan_counts_parts)
{
    CHECK_INT(o7_s3_plan_parts(8 * MIB, 0), 1);
    CHECK_INT(o7_s3_plan_parts(8 * MIB, 8 * MIB), 1);
    CHECK_INT(o7_s3_plan_parts(8 * MIB, 8 * MIB + 1), 2);
    CHECK_INT(o7_s3_plan_parts(8 * MIB, 1000ULL * 8 * MIB), 1000);
    CHECK_INT(o7_s3_plan_parts(8 * MIB, 1000ULL * 8 * MIB + 1), 1001);
    /* A 1 TiB object fits in well under 10,000 parts with the default. */
    long n = o7_s3_plan_parts(8 * MIB, 1ULL << 40);
    CHECK(n > 0 && n <= O7_S3_MAX_PARTS);
}

/* The largest object the plan holds is the sum of its 10,000 parts; one
 * byte more would need part 10,001, which S3 refuses: the plan says so. */
TEST(plan_10001_parts_is_impossible)
{
    const long long base = 5 * MIB;
    unsigned long long max = 0;
    for (int i = 1; i <= O7_S3_MAX_PARTS; i++)
        max += (unsigned long long)o7_s3_part_size(base, i);
    CHECK_INT(o7_s3_plan_parts(base, max), O7_S3_MAX_PARTS);
    CHECK_INT(o7_s3_plan_parts(base, max + 1), -1);
    /* With a flat 5 MiB part, 10,000 parts would hold only ~48.8 GiB; the
     * growing plan holds about 5 TiB. */
    CHECK(max > 10000ULL * 5 * MIB * 100);
}

TEST(xml_scanner_decodes_entities)
{
    const char *xml = "<R><Contents><Key>a &amp; b &lt;c&gt; &quot;&apos; &#233;&#x65E5;</Key>"
                      "</Contents><Contents><Key>two</Key></Contents><Empty/></R>";
    o7_buf v = O7_BUF_INIT;
    size_t pos = 0;
    CHECK(o7_s3_xml_next(xml, strlen(xml), &pos, "Key", &v));
    CHECK_STR(v.data, "a & b <c> \"' \xc3\xa9\xe6\x97\xa5");
    CHECK(o7_s3_xml_next(xml, strlen(xml), &pos, "Key", &v));
    CHECK_STR(v.data, "two");
    CHECK(!o7_s3_xml_next(xml, strlen(xml), &pos, "Key", &v));
    pos = 0;
    CHECK(o7_s3_xml_next(xml, strlen(xml), &pos, "Empty", &v));
    CHECK_STR(v.data, "");
    o7_buf_free(&v);
}

TEST(xml_scanner_refuses_broken_input)
{
    o7_buf v = O7_BUF_INIT;
    size_t pos = 0;
    const char *unclosed = "<Key>abc";
    CHECK(!o7_s3_xml_next(unclosed, strlen(unclosed), &pos, "Key", &v));
    pos = 0;
    const char *bad_entity = "<Key>a &bogus; b</Key>";
    CHECK(!o7_s3_xml_next(bad_entity, strlen(bad_entity), &pos, "Key", &v));
    pos = 0;
    /* <KeyCount> is not <Key>. */
    const char *other = "<KeyCount>3</KeyCount>";
    CHECK(!o7_s3_xml_next(other, strlen(other), &pos, "Key", &v));
    o7_buf_free(&v);
}

static o7_conf base_conf(void)
{
    o7_conf c;
    memset(&c, 0, sizeof c);
    c.storage_url = (char *)"s3://bkt/my backups";
    c.s3_endpoint = (char *)"https://nyc3.digitaloceanspaces.com";
    c.s3_region = (char *)"nyc3";
    c.s3_access_key = (char *)"AK";
    c.s3_secret_key = (char *)"not-a-real-secret";
    return c;
}

TEST(open_describes_without_secret)
{
    o7_conf c = base_conf();
    o7_storage *st = NULL;
    o7_err err = {0};
    CHECK_INT(o7_storage_open(&c, &st, &err), O7_OK);
    if (st) {
        CHECK_STR(o7_storage_describe(st),
                  "s3://bkt/my backups/ at https://nyc3.digitaloceanspaces.com");
        CHECK(strstr(o7_storage_describe(st), "not-a-real-secret") == NULL);
        char *url = NULL;
        CHECK_INT(o7_storage_presign(st, "a b+c", 604801, &url, &err), O7_ERR_USAGE);
        CHECK_INT(o7_storage_presign(st, "a b+c", 60, &url, &err), O7_OK);
        CHECK(url && strncmp(url,
                             "https://nyc3.digitaloceanspaces.com/bkt/my%20backups/"
                             "a%20b%2Bc?X-Amz-Algorithm=",
                             79) == 0);
        CHECK(url && strstr(url, "not-a-real-secret") == NULL);
        free(url);
        const char *bad[] = {"", "/abs", "a//b", "a/", "./a", "a/../b", ".."};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            o7_writer *w = NULL;
            o7_err_clear(&err);
            CHECK_INT(o7_storage_writer(st, bad[i], &w, &err), O7_ERR_STORAGE);
            CHECK(strstr(err.msg, "not a valid object key") != NULL);
        }
        o7_writer *w = NULL;
        CHECK_INT(o7_storage_writer(st, "a.b/..c/.d", &w, &err), O7_OK);
        o7_writer_abort(w);
    }
    o7_storage_close(st);
}

TEST(open_refuses_plain_http_off_loopback)
{
    o7_conf c = base_conf();
    o7_storage *st = NULL;
    o7_err err = {0};
    c.s3_endpoint = (char *)"http://nyc3.digitaloceanspaces.com";
    CHECK_INT(o7_storage_open(&c, &st, &err), O7_ERR_CONFIG);
    CHECK(strstr(err.msg, "plain http") != NULL);
    o7_err_clear(&err);
    c.s3_endpoint = (char *)"http://127.0.0.1:9000";
    CHECK_INT(o7_storage_open(&c, &st, &err), O7_OK);
    o7_storage_close(st);
}

TEST(open_refuses_small_parts_unless_testing)
{
    o7_conf c = base_conf();
    o7_storage *st = NULL;
    o7_err err = {0};
    c.s3_part_size = 1 * MIB;
    unsetenv("O7_TEST_TINY_PARTS");
    CHECK_INT(o7_storage_open(&c, &st, &err), O7_ERR_CONFIG);
    setenv("O7_TEST_TINY_PARTS", "1", 1);
    o7_err_clear(&err);
    CHECK_INT(o7_storage_open(&c, &st, &err), O7_OK);
    o7_storage_close(st);
    unsetenv("O7_TEST_TINY_PARTS");
}

int main(void)
{
    RUN(part_size_doubles_every_thousand_parts);
    RUN(plan_counts_parts);
    RUN(plan_10001_parts_is_impossible);
    RUN(xml_scanner_decodes_entities);
    RUN(xml_scanner_refuses_broken_input);
    RUN(open_describes_without_secret);
    RUN(open_refuses_plain_http_off_loopback);
    RUN(open_refuses_small_parts_unless_testing);
    return check_summary();
}
