/*
 * tools.h - hfmount's subcommands that are not a mount: prefetch, status,
 * cache ls, cache clean.
 *
 * Ownership: cfg is the caller's, parsed by hfm_config_parse().
 * Threads: runs on the main thread; prefetch starts the Hub and cache
 * threads for its duration.
 */
#ifndef HFM_FS_TOOLS_H
#define HFM_FS_TOOLS_H

#include "fs/config.h"

/* Runs cfg->command (not HFM_CMD_MOUNT); returns the exit status. */
int hfm_tool_main(struct hfm_config *cfg);

#endif /* HFM_FS_TOOLS_H */
