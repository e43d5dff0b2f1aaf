-- config.lua -- an example settings file for `luahub --config FILE`.
--
-- A Lua file that returns a table of settings. Each name is a flag
-- without its "--", with _ for - (rate_limit for --rate-limit); a value is
-- what the flag takes (a number or a string), true or false for a switch
-- (--reuse-port), a list of strings for a list (--allowed-origins).
-- Flags given on the command line win over this file. An unknown name or
-- a bad value stops the start with a line naming the file and the setting.
-- `luahub --config FILE --print-config` prints every setting in force and
-- where it came from.
--
-- The file runs in a sandbox (no io, os, require; string, math and table
-- are there) and must finish within a couple of seconds. Relative paths
-- are taken from the working directory, as on the command line: a service
-- manager's is /, so give absolute ones.
--
-- Installed, this file is DATADIR/luahub/config.lua; the systemd unit
-- reads /etc/luahub/config.lua: copy it there and edit.
return {
  host = "127.0.0.1", -- "0.0.0.0" or "::" listens on every interface
  port = 8080,

  -- The handlers, the runtime and the page: unset, they are looked for in
  -- the working directory, beside the binary, then where an install put
  -- them (see luahub --help).
  -- scripts = "/etc/luahub/scripts",
  -- static = "/srv/chat",

  -- Limits per connection and for the server.
  max_message = "64k",
  send_queue = "1m",
  rate_limit = 50, -- messages a second; 0: none
  max_conns = 50000,
  max_conns_per_ip = 20,

  -- Who may connect: tokens signed with the secret in this file (with
  -- systemd, LoadCredential= puts it under $CREDENTIALS_DIRECTORY), pages
  -- from these origins.
  -- auth_secret_file = "/run/credentials/luahub.service/secret",
  -- allowed_origins = { "https://chat.example.com" },
  -- trusted_proxies = { "127.0.0.1/32", "::1/128" },

  log_level = "info",
  log_format = "text", -- "json": one JSON object a line, for log shippers
}
