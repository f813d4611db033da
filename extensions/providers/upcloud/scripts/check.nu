#!/usr/bin/env nu
# Check that the upcloud provider can work: upctl present and the account reachable.

# The first MAJOR.MINOR.PATCH in upctl's version output, or "".
export def parse-version [text: string]: nothing -> string {
    $text | parse --regex '(?<v>\d+\.\d+\.\d+)' | get v.0? | default ""
}

# Credentials file lines (KEY=value) as a record; comments and blank lines are skipped.
export def parse-credentials [text: string]: nothing -> record {
    $text | lines | where {|l| ($l | str trim) != "" and not ($l | str starts-with "#") }
    | parse "{key}={value}" | reduce --fold {} {|row, acc| $acc | upsert ($row.key | str trim) ($row.value | str trim) }
}

# One check result as a record.
export def check-result [name: string, ok: bool, detail: string]: nothing -> record {
    {check: $name, ok: $ok, detail: $detail}
}

def main [
    --credentials: path = "~/.config/upcloud/credentials"  # file with UPCLOUD_USERNAME and UPCLOUD_PASSWORD
    --json                                                  # print the results as JSON
] {
    let cli = (which upctl | get path.0? | default "")
    let version = if ($cli | is-empty) { "" } else { parse-version (^upctl version | complete | get stdout) }
    let file = ($credentials | path expand)
    let creds = if ($file | path exists) { parse-credentials (open --raw $file) } else { {} }
    let has_creds = ("UPCLOUD_USERNAME" in $creds) and ("UPCLOUD_PASSWORD" in $creds)
    let account = if ($cli | is-not-empty) and $has_creds {
        with-env {UPCLOUD_USERNAME: $creds.UPCLOUD_USERNAME, UPCLOUD_PASSWORD: $creds.UPCLOUD_PASSWORD} {
            ^upctl account show | complete
        }
    } else {
        {exit_code: 1, stdout: "", stderr: "no upctl or credentials"}
    }
    let results = [
        (check-result "cli" ($version | is-not-empty) (if ($cli | is-empty) { "upctl not on PATH" } else { $"upctl ($version)" }))
        (check-result "credentials" $has_creds $file)
        (check-result "account" ($account.exit_code == 0) ($account.stderr | str trim))
    ]
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
