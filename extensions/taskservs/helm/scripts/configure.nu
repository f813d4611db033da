#!/usr/bin/env nu
# Log Helm in to its OCI chart sources and add classic repositories.

# The helm command that registers one chart source.
export def source-command [source: record]: nothing -> list<string> {
    if ($source.url | str starts-with "oci://") {
        let host = ($source.url | str replace "oci://" "" | split row "/" | first)
        ["helm" "registry" "login" $host "--password-stdin"]
    } else {
        ["helm" "repo" "add" $source.name $source.url "--force-update"]
    }
}

# Print or run one step.
def run-step [dry_run: bool, cmd: list<string>, input: string = ""] {
    if $dry_run {
        print $"would run: ($cmd | str join ' ')"
    } else if ($input | is-empty) {
        run-external ...$cmd
    } else {
        $input | run-external ...$cmd
    }
}

def main [
    --settings: path  # JSON or YAML with the Helm schema's values
    --dry-run         # print the steps instead of running them
] {
    if $settings == null { error make {msg: "--settings is required"} }
    let s = (open $settings)
    for source in $s.sources {
        let cmd = (source-command $source)
        let creds = ($source.credentials_path? | default "")
        if ($cmd | get 1) == "registry" and ($creds | is-empty) {
            continue  # anonymous pulls need no login
        }
        let secret = if ($creds | is-empty) or $dry_run { "" } else { open --raw ($creds | path expand) | str trim }
        run-step $dry_run $cmd $secret
    }
    for plugin in ($s.plugins? | default []) {
        run-step $dry_run [helm plugin install $plugin]
    }
}
