#!/usr/bin/env nu
# Remove the PostgreSQL packages; the data directory only with --purge (dump first!).

# The package manager command that removes the server packages.
export def remove-command [manager: string, major: int, purge: bool]: nothing -> list<string> {
    match $manager {
        "apt-get" => (["apt-get" (if $purge { "purge" } else { "remove" }) "-y"] ++ [$"postgresql-($major)"])
        "dnf" | "yum" => [$manager "remove" "-y" $"postgresql($major)-server"]
        "apk" => ["apk" "del" $"postgresql($major)"]
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
    --major: int = 16                     # PostgreSQL major version
    --manager: string = "apt-get"         # package manager
    --data-dir: path = "/var/lib/postgresql"  # removed with --purge
    --purge                               # also remove configuration and all databases
    --dry-run                             # print the steps instead of running them
] {
    run-step $dry_run [systemctl disable --now postgresql]
    run-step $dry_run (remove-command $manager $major $purge)
    if $purge {
        run-step $dry_run [rm -rf $data_dir /etc/postgresql]
    }
    print "postgresql removed"
}
