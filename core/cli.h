/* cli.h - the commands behind the o7 binary. */
#ifndef O7_CLI_H
#define O7_CLI_H

/** Runs argv[0] (a command name) with its arguments; returns the exit
 * code: 0 success, 1 failed, 2 bad usage or configuration. */
int o7_cli_dispatch(const char *conf_path, int verbosity, int argc, char **argv);

#endif
