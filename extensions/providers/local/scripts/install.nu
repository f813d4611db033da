#!/usr/bin/env nu
# Prepare this machine to drive local servers: an SSH client and a key pair.
# Local provider: existing machines reached over SSH, no cloud API

# The package that provides the ssh client on each package manager.
export def ssh-package [manager: string]: nothing -> string {
    match $manager {
        "apt-get" => "openssh-client"
        "dnf" | "yum" => "openssh-clients"
        "apk" | "pacman" | "brew" => "openssh"
        _ => { error make {msg: $"unknown package manager: ($manager)"} }
    }
}

# The first package manager of a list that is installed, or "".
export def pick-manager [available: list<string>]: nothing -> string {
    ["apt-get" "dnf" "yum" "apk" "pacman" "brew"] | where {|m| $m in $available } | get 0? | default ""
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
    --key: path = "~/.ssh/id_ed25519"  # key pair used to reach the machines
    --dry-run                          # print the steps instead of running them
] {
    if (which ssh | is-empty) {
        let found = (["apt-get" "dnf" "yum" "apk" "pacman" "brew"] | where {|m| which $m | is-not-empty })
        let manager = (pick-manager $found)
        if ($manager | is-empty) { error make {msg: "no supported package manager to install an ssh client"} }
        run-step $dry_run [$manager install -y (ssh-package $manager)]
    }
    let key_file = ($key | path expand)
    if not ($key_file | path exists) {
        run-step $dry_run [ssh-keygen -t ed25519 -N "" -C provisioning -f $key_file]
    }
    if not $dry_run { print $"ssh ready; public key: ($key_file).pub" }  # a dry run only shows the steps
}
