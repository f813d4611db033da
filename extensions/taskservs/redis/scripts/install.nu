#!/usr/bin/env nu
# Install the Redis server package of the host's distribution.
# Redis in-memory data store (Redis 7.2)

# The package, service and config path of Redis on each package manager.
export def layout [manager: string]: nothing -> record {
    match $manager {
        "apt-get" => {package: "redis-server", service: "redis-server", config: "/etc/redis/redis.conf"}
        "dnf" | "yum" => {package: "redis", service: "redis", config: "/etc/redis/redis.conf"}
        "apk" => {package: "redis", service: "redis", config: "/etc/redis.conf"}
        _ => { error make {msg: $"unsupported package manager: ($manager)"} }
    }
}

# Kernel settings Redis warns about at start-up.
export def sysctls []: nothing -> record {
    {"vm.overcommit_memory": 1, "net.core.somaxconn": 1024}
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
    --manager: string = "apt-get"  # package manager of the host
    --dry-run                      # print the steps instead of running them
] {
    let l = (layout $manager)
    for entry in (sysctls | transpose key value) {
        run-step $dry_run [sysctl -w $"($entry.key)=($entry.value)"]
    }
    if $manager == "apt-get" { run-step $dry_run [apt-get update -qq] }
    let verb = if $manager == "apk" { "add" } else { "install" }
    run-step $dry_run [$manager $verb -y $l.package]
    run-step $dry_run [systemctl enable --now $l.service]
    if not $dry_run { print $"redis installed \(($l.package)\)" }  # a dry run only shows the steps
}
