-- curio.handshake: the authentication of a Channel's connections
-- (lua/curio/channel.lua rule 6; docs/channel.md: Authentication), Python
-- multiprocessing's handshake of Python 3.12: each side sends a random
-- challenge ("#CHALLENGE#{sha256}" and 40 random bytes) that the other
-- answers with "{sha256}" and the HMAC-SHA256 of it under the shared key;
-- the challenger replies "#WELCOME#" or "#FAILURE#". The listener
-- challenges first.
--
-- Rules:
--  1. Only frames of at most 256 bytes are read before the handshake has
--     succeeded, and nothing is decoded.
--  2. Digests are compared in constant time; random bytes and HMACs come
--     from libcrypto (core/tlsauth.c in curio.tls, loaded by load(): only
--     when a key is used).
--  3. A failure closes the connection and raises AuthenticationError, the
--     message prefixed by the caller's name ("accept: digest received was
--     wrong"); a frame that is no answer (too big, the end) is one too,
--     "the handshake failed: ..." with .cause. Cancellations and errors
--     of the system pass as they are.

local handshake = {}

local CHALLENGE, WELCOME, FAILURE, DIGEST = "#CHALLENGE#", "#WELCOME#", "#FAILURE#", "{sha256}"
local HANDSHAKE_MAX = 256

local crypto -- curio.tls, once loaded

-- handshake.load(): loads libcrypto's functions (curio.tls) if not yet.
function handshake.load()
  if crypto == nil then
    require "curio.ssl" -- (exports curio.core's symbols for curio.tls)
    crypto = require "curio.tls"
  end
end

-- Sends a challenge and checks the peer's answer.
local function deliver_challenge(conn, key, AuthenticationError)
  local message = DIGEST .. crypto.random_bytes(40)
  conn:send_bytes(CHALLENGE .. message)
  local response = conn:recv_bytes(HANDSHAKE_MAX)
  local expected = DIGEST .. crypto.hmac_sha256(key, message)
  if not crypto.equal_digests(response, expected) then
    pcall(conn.send_bytes, conn, FAILURE)
    error(AuthenticationError("digest received was wrong"), 0)
  end
  conn:send_bytes(WELCOME)
end

-- Answers the peer's challenge.
local function answer_challenge(conn, key, AuthenticationError)
  local message = conn:recv_bytes(HANDSHAKE_MAX)
  if message:sub(1, #CHALLENGE) ~= CHALLENGE then
    error(AuthenticationError("the peer sent no challenge"), 0)
  end
  message = message:sub(#CHALLENGE + 1)
  if message:sub(1, #DIGEST) ~= DIGEST or #message < #DIGEST + 20 then
    error(AuthenticationError("the peer's challenge is not HMAC-SHA256"), 0)
  end
  conn:send_bytes(DIGEST .. crypto.hmac_sha256(key, message))
  local response = conn:recv_bytes(HANDSHAKE_MAX)
  if response ~= WELCOME then error(AuthenticationError("digest sent was rejected"), 0) end
end

local function both_ways(conn, key, server, AuthenticationError)
  if server then
    deliver_challenge(conn, key, AuthenticationError)
    answer_challenge(conn, key, AuthenticationError)
  else
    answer_challenge(conn, key, AuthenticationError)
    deliver_challenge(conn, key, AuthenticationError)
  end
end

-- handshake.authenticate(conn, key, server, fname, ChannelError,
-- AuthenticationError) -> conn once authenticated (rule 3 on failure);
-- server: this side listened (it challenges first).
function handshake.authenticate(conn, key, server, fname, ChannelError, AuthenticationError)
  handshake.load()
  local ok, err = pcall(both_ways, conn, key, server, AuthenticationError)
  if ok then return conn end
  conn:close()
  if ChannelError:matches(err) and not AuthenticationError:matches(err) then
    err = AuthenticationError("the handshake failed: " .. err.message, { cause = err })
  end
  if AuthenticationError:matches(err) then err.message = fname .. ": " .. err.message end
  error(err, 0)
end

return handshake
