#!/usr/bin/env nu
# Install the PostgreSQL server packages of the host's distribution.
# PostgreSQL relational database server

const DEFAULT_MAJOR = 16

# Package names for a major version on each package manager.
export def package-names [manager: string, major: int]: nothing -> list<string> {
    match $manager {
        "apt-get" => [$"postgresql-($major)" $"postgresql-client-($major)"]
        "dnf" | "yum" => [$"postgresql($major)-server" $"postgresql($major)"]
        "apk" => [$"postgresql($major)" $"postgresql($major)-client"]
        _ => { error make {msg: $"unsupported package manager: ($manager)"} }
    }
}

# The first supported package manager on PATH, or "".
export def pick-manager [available: list<string>]: nothing -> string {
    ["apt-get" "dnf" "yum" "apk"] | where {|m| $m in $available } | get 0? | default ""
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
    --major: int = $DEFAULT_MAJOR  # PostgreSQL major version
    --dry-run                      # print the steps instead of running them
] {
    let available = (["apt-get" "dnf" "yum" "apk"] | where {|m| which $m | is-not-empty })
    let manager = if $dry_run and ($available | is-empty) { "apt-get" } else { pick-manager $available }
    if ($manager | is-empty) { error make {msg: "no supported package manager (apt-get, dnf, yum, apk)"} }
    if $manager == "apt-get" { run-step $dry_run [apt-get update -qq] }
    run-step $dry_run ([$manager install -y] ++ (package-names $manager $major))
    if $manager in ["dnf" "yum"] {
        run-step $dry_run [$"/usr/pgsql-($major)/bin/postgresql-($major)-setup" initdb]
    }
    run-step $dry_run [systemctl enable --now postgresql]
    if not $dry_run { print $"postgresql ($major) installed" }  # a dry run only shows the steps
}
