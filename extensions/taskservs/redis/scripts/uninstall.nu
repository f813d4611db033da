#!/usr/bin/env nu
# Remove the Redis server package; the dataset only with --purge.

# The package manager command that removes Redis.
export def remove-command [manager: string, purge: bool]: nothing -> list<string> {
    match $manager {
        "apt-get" => ["apt-get" (if $purge { "purge" } else { "remove" }) "-y" "redis-server"]
        "dnf" | "yum" => [$manager "remove" "-y" "redis"]
        "apk" => ["apk" "del" "redis"]
        _ => { error make {msg: $"unsupported package manager: ($manager)"} }
    }
}

# Print or run one step.
def run-step [dry_run: bool, cmd: list<string>] {
    if $dry_run {
        print $"would run: ($cmd | str join ' ')"
    } else {
        run-external ...$cmd
    }
}

def main [
    --manager: string = "apt-get"       # package manager of the host
    --data-dir: path = "/var/lib/redis"  # removed with --purge
    --purge                             # also remove configuration and data
    --dry-run                           # print the steps instead of running them
] {
    run-step $dry_run (remove-command $manager $purge)
    if $purge {
        run-step $dry_run [rm -rf $data_dir]
    }
    print "redis removed"
}
