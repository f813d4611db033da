#!/usr/bin/env nu
# Check that every machine of an inventory answers on its SSH port.

# The ssh command line that runs `true` on a machine without prompting.
export def ssh-args [user: string, address: string, port: int, timeout: int]: nothing -> list<string> {
    ["ssh" "-o" "BatchMode=yes" "-o" $"ConnectTimeout=($timeout)" "-p" ($port | into string) $"($user)@($address)" "true"]
}

# Inventory entries (hostname, address, optional ssh_port) with the port defaulted.
export def normalize-inventory [servers: list<record>]: nothing -> list<record> {
    $servers | each {|s| {hostname: $s.hostname, address: $s.address, ssh_port: ($s.ssh_port? | default 22)} }
}

def main [
    --inventory: path = "./inventory.yaml"  # servers: [{hostname, address, ssh_port}]
    --user: string = "root"                 # ssh user
    --timeout: int = 10                     # seconds per machine
    --json                                  # print the results as JSON
] {
    let servers = (normalize-inventory (open $inventory | get servers))
    let results = ($servers | par-each {|s|
        let cmd = (ssh-args $user $s.address $s.ssh_port $timeout)
        let res = (run-external ...$cmd | complete)
        {check: $s.hostname, ok: ($res.exit_code == 0), detail: $"($s.address):($s.ssh_port)"}
    } | sort-by check)
    if $json { print ($results | to json) } else { print ($results | table) }
    if ($results | any {|r| not $r.ok }) { exit 1 }
}
