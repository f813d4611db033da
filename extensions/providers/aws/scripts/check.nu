#!/usr/bin/env nu
# Check that the aws provider can work: CLI present and credentials accepted by STS.

# The CLI version from `aws --version` output ("aws-cli/2.13.25 Python/3.11.6 ..."), or "".
export def parse-version [text: string]: nothing -> string {
    $text | parse --regex 'aws-cli/(?<v>\d+\.\d+\.\d+)' | get v.0? | default ""
}

# One check result as a record.
export def check-result [name: string, ok: bool, detail: string]: nothing -> record {
    {check: $name, ok: $ok, detail: $detail}
}

def main [
    --profile: string = "default"  # AWS CLI profile to check
    --json                         # print the results as JSON
] {
    let cli = (which aws | get path.0? | default "")
    let version = if ($cli | is-empty) { "" } else { parse-version (^aws --version | complete | get stdout) }
    let identity = if ($cli | is-empty) {
        {exit_code: 1, stdout: "", stderr: "aws not installed"}
    } else {
        ^aws sts get-caller-identity --profile $profile --output json | complete
    }
    let account = if $identity.exit_code == 0 { $identity.stdout | from json | get Account } else { "" }
    let results = [
        (check-result "cli" ($version | is-not-empty) (if ($cli | is-empty) { "aws not on PATH" } else { $"aws-cli ($version)" }))
        (check-result "credentials" ($identity.exit_code == 0) (if $identity.exit_code == 0 { $"account ($account)" } else { $identity.stderr | str trim }))
    ]
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
