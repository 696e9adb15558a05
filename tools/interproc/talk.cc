#include "talk.h"

#if defined(_WIN32)
#include <fcntl.h>
#include <io.h>
#include <windows.h>
#else
#include <unistd.h>

#include <cerrno>
#endif

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <ostream>
#include <thread>
#include <utility>

#include "CLI/CLI.hpp"
#include "json.h"

namespace interproc::cli {

CLI::Option* AddTimeoutOption(CLI::App* app, std::string* text, std::string_view what) {
  const std::string help = std::string(what) + "; " + std::string(TimeoutHelp());
  return app->add_option("--timeout", *text, help)
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            return ParseTimeout(value).has_value()
                       ? std::string()
                       : "bad timeout \"" + value + "\" (250ms, 5s, 2m, 0 or infinite)";
          },
          "TIME", "timeout"));
}

Timeout TimeoutOf(const std::string& text) {
  // The option's check accepted it; a default that does not parse is a bug
  // that shows as "do not wait".
  return ParseTimeout(text).value_or(Timeout{});
}

void AddFormatOptions(CLI::App* app, bool* hex, bool* json, bool input_too) {
  CLI::Option* hex_opt = app->add_flag(
      "--hex", *hex,
      input_too ? "messages in hex: each TEXT or input line is hex digits (and each message "
                  "received prints as one line of hex)"
                : "print each message as one line of hex");
  if (json != nullptr) {
    app->add_flag("--json", *json,
                  "print each message as a JSON object: {\"size\":N,\"text\":\"...\"}, or "
                  "{\"size\":N,\"hex\":\"...\"} when it is not valid UTF-8")
        ->excludes(hex_opt);
  }
}

MessageFormat FormatOf(bool hex, bool json) {
  if (hex) return MessageFormat::kHex;
  if (json) return MessageFormat::kJson;
  return MessageFormat::kText;
}

std::string ToHex(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    const auto v = static_cast<unsigned>(b);
    out += kDigits[v >> 4];
    out += kDigits[v & 15];
  }
  return out;
}

std::optional<Bytes> ParseHex(std::string_view text) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out;
  out.reserve(text.size() / 2);
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == ':' || text[i] == '\t') {
      ++i;
      continue;
    }
    if (i + 1 >= text.size()) return std::nullopt;
    const int hi = digit(text[i]);
    const int lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<std::byte>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

bool IsValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0u) != 0x80u) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    // Overlong forms, surrogates and values past U+10FFFF.
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string MessageLine(std::span<const std::byte> message, MessageFormat format) {
  const std::string_view text(reinterpret_cast<const char*>(message.data()), message.size());
  switch (format) {
    case MessageFormat::kText:
      return std::string(text) + '\n';
    case MessageFormat::kHex:
      return ToHex(message) + '\n';
    case MessageFormat::kJson: {
      JsonObject obj;
      obj.AddNumber("size", message.size());
      if (IsValidUtf8(text)) {
        obj.AddString("text", text);
      } else {
        obj.AddString("hex", ToHex(message));
      }
      return obj.str() + '\n';
    }
  }
  return std::string(text) + '\n';
}

void UseBinaryStdio() {
#if defined(_WIN32)
  std::fflush(stdout);
  (void)_setmode(_fileno(stdout), _O_BINARY);
  (void)_setmode(_fileno(stdin), _O_BINARY);
#endif
}

Result<std::size_t> ReadStdin(std::span<std::byte> buffer) {
  if (buffer.empty()) return std::size_t{0};
#if defined(_WIN32)
  HANDLE in = ::GetStdHandle(STD_INPUT_HANDLE);
  if (in == nullptr || in == INVALID_HANDLE_VALUE) return std::size_t{0};
  const DWORD want = buffer.size() > (1u << 30) ? (1u << 30) : static_cast<DWORD>(buffer.size());
  DWORD got = 0;
  if (!::ReadFile(in, buffer.data(), want, &got, nullptr)) {
    const DWORD err = ::GetLastError();
    if (err == ERROR_BROKEN_PIPE || err == ERROR_HANDLE_EOF || err == ERROR_INVALID_HANDLE ||
        err == ERROR_NO_DATA) {
      return std::size_t{0};
    }
    return Error::FromWin32("ReadFile(stdin)", err);
  }
  return static_cast<std::size_t>(got);
#else
  for (;;) {
    const ssize_t n = ::read(0, buffer.data(), buffer.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EBADF) return std::size_t{0};
    return Error::FromErrno("read(stdin)", errno);
  }
#endif
}

Result<void> WriteOut(Io& io, std::span<const std::byte> bytes) {
  io.out.write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  io.out.flush();
  if (!io.out) return Error(Errc::kInternal, "write(stdout)");
  return {};
}

Result<void> WriteOut(Io& io, std::string_view text) { return WriteOut(io, AsByteSpan(text)); }

Result<std::optional<std::string>> StdinLines::Next() {
  for (;;) {
    if (const std::size_t nl = pending_.find('\n'); nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.size() > max_line_) {
        return Error(Errc::kMessageTooLarge, "an input line over the maximum message size");
      }
      return std::optional<std::string>(std::move(line));
    }
    // Without a newline, one more byte than the limit (two for "\r") proves too much.
    if (pending_.size() > max_line_ + 1) {
      return Error(Errc::kMessageTooLarge, "an input line over the maximum message size");
    }
    if (eof_) {
      if (pending_.empty()) return std::optional<std::string>();
      std::string line = std::move(pending_);
      pending_.clear();
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.size() > max_line_) {
        return Error(Errc::kMessageTooLarge, "an input line over the maximum message size");
      }
      return std::optional<std::string>(std::move(line));
    }
    // Read no more than the line may still need, so the buffer stays bounded.
    std::byte buf[4096];
    const std::size_t room = max_line_ + 2 - pending_.size();
    const std::size_t want = room < sizeof(buf) ? room : sizeof(buf);
    INTERPROC_ASSIGN_OR_RETURN(const std::size_t n, ReadStdin(std::span<std::byte>(buf, want)));
    if (n == 0) {
      eof_ = true;
    } else {
      pending_.append(reinterpret_cast<const char*>(buf), n);
    }
  }
}

MessageSource::MessageSource(std::vector<std::string> texts, bool hex, std::size_t max_message,
                             bool newline)
    : texts_(std::move(texts)), hex_(hex), newline_(newline && !hex) {
  if (texts_.empty()) {
    // A hex line takes two digits per byte, plus separators.
    lines_.emplace(hex ? max_message * 3 + 2 : max_message);
  }
}

Result<std::optional<Bytes>> MessageSource::Next() {
  std::string text;
  if (lines_.has_value()) {
    INTERPROC_ASSIGN_OR_RETURN(std::optional<std::string> line, lines_->Next());
    if (!line.has_value()) return std::optional<Bytes>();
    text = std::move(*line);
  } else {
    if (next_text_ == texts_.size()) return std::optional<Bytes>();
    text = texts_[next_text_++];
  }
  ++count_;
  if (hex_) {
    std::optional<Bytes> bytes = ParseHex(text);
    if (!bytes.has_value()) return Error(Errc::kInvalidArgument, "hex message");
    return bytes;
  }
  if (newline_) text += '\n';
  const auto span = AsByteSpan(text);
  return std::optional<Bytes>(Bytes(span.begin(), span.end()));
}

struct StdinPump::State {
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Taken> queue;
  std::optional<Taken> final;  // the end (or error), once taken
  bool interrupted = false;
};

std::shared_ptr<StdinPump> StdinPump::Start(bool lines, bool hex, std::size_t max_piece) {
  auto state = std::make_shared<State>();
  std::thread([state, lines, hex, max_piece] {
    std::optional<MessageSource> source;
    if (lines) source.emplace(std::vector<std::string>{}, hex, max_piece);
    Bytes chunk(lines ? 0 : max_piece);
    for (;;) {
      Taken piece;
      if (source.has_value()) {
        Result<std::optional<Bytes>> next = source->Next();
        if (!next.has_value()) {
          piece.status = Status::kError;
          piece.error = next.error();
        } else if (next->has_value()) {
          piece.status = Status::kPiece;
          piece.piece = std::move(**next);
        }
      } else {
        Result<std::size_t> n = ReadStdin(chunk);
        if (!n.has_value()) {
          piece.status = Status::kError;
          piece.error = n.error();
        } else if (*n > 0) {
          piece.status = Status::kPiece;
          piece.piece.assign(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(*n));
        }
      }
      const bool last = piece.status != Status::kPiece;
      std::unique_lock lock(state->mu);
      state->cv.wait(lock, [&] { return state->queue.size() < 2; });
      state->queue.push_back(std::move(piece));
      state->cv.notify_all();
      if (last) return;
    }
  }).detach();
  return std::make_shared<StdinPump>(std::move(state));
}

StdinPump::Taken StdinPump::Take() {
  std::unique_lock lock(state_->mu);
  state_->cv.wait(lock, [&] {
    return state_->interrupted || !state_->queue.empty() || state_->final.has_value();
  });
  if (state_->interrupted) return Taken{Status::kInterrupted, {}, std::nullopt};
  if (!state_->queue.empty()) {
    Taken piece = std::move(state_->queue.front());
    state_->queue.pop_front();
    if (piece.status != Status::kPiece) state_->final = piece;
    state_->cv.notify_all();
    return piece;
  }
  return *state_->final;
}

void StdinPump::Interrupt() {
  std::lock_guard lock(state_->mu);
  state_->interrupted = true;
  state_->cv.notify_all();
}

void StdinPump::Rearm() {
  std::lock_guard lock(state_->mu);
  state_->interrupted = false;
}

bool StdinPump::ended() const {
  std::lock_guard lock(state_->mu);
  return state_->final.has_value();
}

}  // namespace interproc::cli
