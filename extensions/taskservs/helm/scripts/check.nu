#!/usr/bin/env nu
# Check the Helm client: present, Helm 3, recent enough.

# The version from `helm version --short` ("v3.13.0+g825e86f"), or "".
export def parse-version [text: string]: nothing -> string {
    $text | parse --regex 'v(?<v>\d+\.\d+\.\d+)' | get v.0? | default ""
}

# Whether version HAVE is at least WANT (both MAJOR.MINOR.PATCH).
export def version-at-least [have: string, want: string]: nothing -> bool {
    let h = ($have | split row "." | each {|p| $p | into int })
    let w = ($want | split row "." | each {|p| $p | into int })
    for i in 0..2 {
        if ($h | get $i) > ($w | get $i) { return true }
        if ($h | get $i) < ($w | get $i) { return false }
    }
    true
}

def main [
    --min-version: string = "3.10.0"  # oldest acceptable Helm
    --json                            # print the results as JSON
] {
    let version = (parse-version (^helm version --short | complete | get stdout))
    let results = [
        {check: "version", ok: (($version | is-not-empty) and (version-at-least $version $min_version)), detail: $"found '($version)', want >= ($min_version)"}
    ]
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
