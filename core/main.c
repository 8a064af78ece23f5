/* main.c - the o7 command line: parses arguments, opens what a command
 * needs, runs it, prints the result for people or (--json) for scripts.
 *
 * Exit codes: 0 success, 1 the operation failed, 2 bad usage or
 * configuration. With --json, standard output holds exactly one JSON object;
 * logs and progress go to standard error. */
#include "buf.h"
#include "catalog.h"
#include "cli.h"
#include "conf.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: o7 [-c FILE] [-v|-q] COMMAND [ARGS]\n"
          "\n"
          "Back up and restore BigCommerce stores.\n"
          "\n"
          "commands:\n"
          "  store add HASH          register a store; reads its API token from standard input\n"
          "  store list              the registered stores\n"
          "  store remove HASH       forget a store's token (its backups stay)\n"
          "  backup HASH             back a store up now\n"
          "  backups HASH            list a store's backups\n"
          "  restore BACKUP_ID       put a backup (or some types or records) back\n"
          "  verify BACKUP_ID        read a backup back and check every object\n"
          "  url BACKUP_ID NAME      a download link for one object of a backup\n"
          "  delete BACKUP_ID        delete a backup\n"
          "  plugins                 the plugins found and any that failed to load\n"
          "  catalog rebuild         re-create the backup list from storage\n"
          "  audit [HASH]            the audit log\n"
          "  gc                      remove unfinished uploads and folders\n"
          "\n"
          "options:\n"
          "  -c FILE                 configuration file (default ./o7.conf)\n"
          "  -v, -q                  more or less logging\n"
          "  --help                  help; also after any command\n"
          "\n"
          "See docs/CLI.md for every command, its JSON and its exit codes.\n",
          f);
}

/* Bad usage before a command is known: a sentence on standard error and,
 * when --json is anywhere on the line, one JSON object on standard output. */
static int usage_fail(int argc, char **argv, const char *msg)
{
    fprintf(stderr, "o7: %s\n", msg);
    usage(stderr);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") != 0)
            continue;
        o7_buf b = O7_BUF_INIT;
        o7_buf_puts(&b, "{\"status\": \"failed\", \"error\": ");
        o7_buf_json_str(&b, msg, strlen(msg));
        o7_buf_puts(&b, "}\n");
        if (b.data)
            fwrite(b.data, 1, b.len, stdout);
        o7_buf_free(&b);
        break;
    }
    return 2;
}

int main(int argc, char **argv)
{
    const char *conf_path = "o7.conf";
    int verbosity = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            conf_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            conf_path = argv[i] + 9;
        } else if (strcmp(argv[i], "-v") == 0) {
            verbosity++;
        } else if (strcmp(argv[i], "-q") == 0) {
            verbosity--;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("o7 %s\n", O7_VERSION);
            return 0;
        } else {
            char msg[300];
            snprintf(msg, sizeof msg, "unknown option %.200s (see o7 --help)", argv[i]);
            return usage_fail(argc, argv, msg);
        }
    }
    if (i >= argc)
        return usage_fail(argc, argv, "no command given (see o7 --help)");
    return o7_cli_dispatch(conf_path, verbosity, argc - i, argv + i);
}
