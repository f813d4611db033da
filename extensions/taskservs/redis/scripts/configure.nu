#!/usr/bin/env nu
# Write redis.conf from the taskserv settings and restart the server.

# redis.conf lines for the settings (the password comes from a file, never the settings).
export def conf-lines [s: record, password: string]: nothing -> list<string> {
    let base = [
        $"bind ($s.bind | str join ' ')"
        $"port ($s.port)"
        $"protected-mode (if $s.protected_mode { 'yes' } else { 'no' })"
        $"dir ($s.data_dir)"
        $"databases ($s.databases)"
        $"maxmemory ($s.maxmemory_mb)mb"
        $"maxmemory-policy ($s.maxmemory_policy)"
        $"appendonly (if $s.appendonly { 'yes' } else { 'no' })"
        $"appendfsync ($s.appendfsync)"
    ]
    let saves = ($s.save | each {|e| $"save ($e)" })
    let auth = if ($password | is-empty) { [] } else { [$"requirepass ($password)"] }
    $base ++ $saves ++ $auth
}

def main [
    --settings: path                       # JSON or YAML with the Redis schema's values
    --config: path = "/etc/redis/redis.conf"  # file to write
    --service: string = "redis-server"     # systemd unit to restart
    --dry-run                              # print the file (password hidden) instead of writing it
] {
    if $settings == null { error make {msg: "--settings is required"} }
    let s = (open $settings)
    let pw_file = ($s.password_path? | default "")
    if $dry_run {
        print (conf-lines $s (if ($pw_file | is-empty) { "" } else { "********" }) | str join "\n")
        return
    }
    let password = if ($pw_file | is-empty) { "" } else { open --raw ($pw_file | path expand) | str trim }
    $"# written by provisioning\n(conf-lines $s $password | str join "\n")\n" | save --force $config
    ^chmod 0640 $config
    ^systemctl restart $service
    print $"wrote ($config)"
}
