std = "lua54"
max_line_length = 110
files["spec"] = { std = "+busted", max_line_length = 140 }
files["bench"] = { ignore = { "211" } }
exclude_files = { "build", "build-asan" }
