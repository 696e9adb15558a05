// talk.h
//
// What the commands that talk to objects (pipe, mailslot, channel, request)
// share: the --timeout option, hex and JSON message formats, bounded reading of
// standard input (raw chunks or lines), and a background pump that reads
// standard input while the main thread waits on an object.
//
// Standard input and output are used as raw bytes on every platform (Windows:
// binary mode), so byte streams pass through unchanged. Lines end at "\n"; a
// "\r" before it is dropped, so text typed on Windows gives the same messages.

#ifndef INTERPROC_TOOLS_INTERPROC_TALK_H_
#define INTERPROC_TOOLS_INTERPROC_TALK_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "command.h"
#include "interproc/result.h"
#include "timeout.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace interproc::cli {

using Bytes = std::vector<std::byte>;

// Adds "--timeout T" to `app`, checked at parse time (a bad value is a usage
// error); `*text` holds `default_text` unless given. `what` says what it bounds.
CLI::Option* AddTimeoutOption(CLI::App* app, std::string* text, std::string_view what);
// The parsed value of a text the option's check accepted.
Timeout TimeoutOf(const std::string& text);

// How a message is printed: one line each.
enum class MessageFormat {
  kText,  // the bytes as they are, then "\n"
  kHex,   // lowercase hex, then "\n"
  kJson,  // {"size":N,"text":"..."} if the bytes are valid UTF-8, else {"size":N,"hex":"..."}
};

// Adds --hex and --json (mutually exclusive) to `app`.
void AddFormatOptions(CLI::App* app, bool* hex, bool* json, bool input_too);
MessageFormat FormatOf(bool hex, bool json);

// `message` printed in `format`, newline included.
std::string MessageLine(std::span<const std::byte> message, MessageFormat format);

std::string ToHex(std::span<const std::byte> bytes);
// Parses hex digits (either case; spaces and ':' between bytes allowed).
// nullopt for anything else or an odd number of digits.
std::optional<Bytes> ParseHex(std::string_view text);
bool IsValidUtf8(std::string_view s);

inline std::span<const std::byte> AsByteSpan(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// Switches standard input and output to binary mode (Windows; no-op elsewhere).
void UseBinaryStdio();

// Reads up to `buffer.size()` bytes of standard input; 0 at end of file. A
// closed or missing standard input reads as end of file.
Result<std::size_t> ReadStdin(std::span<std::byte> buffer);

// Writes `bytes` to `io.out` and flushes, so that a pipeline sees each message
// as it arrives. Fails (Internal) if the output is gone.
Result<void> WriteOut(Io& io, std::span<const std::byte> bytes);
Result<void> WriteOut(Io& io, std::string_view text);

// Splits standard input into lines of at most `max_line` bytes (without the
// newline, and without a "\r" before it). A last line without a newline counts.
class StdinLines {
 public:
  explicit StdinLines(std::size_t max_line) : max_line_(max_line) {}
  // The next line; nullopt at end of input. Errors: MessageTooLarge (a line
  // over max_line; nothing beyond max_line + 1 bytes is buffered), and those of
  // ReadStdin.
  Result<std::optional<std::string>> Next();

 private:
  std::size_t max_line_;
  std::string pending_;
  bool eof_ = false;
};

// The messages a sending command sends: one per TEXT argument, or, with no
// TEXT, one per line of standard input. With `hex`, each TEXT or line is hex.
// `newline` appends "\n" to each message from a TEXT or a line (byte streams,
// where nothing else separates them).
class MessageSource {
 public:
  MessageSource(std::vector<std::string> texts, bool hex, std::size_t max_message,
                bool newline = false);
  // The next message; nullopt at the end. Errors: InvalidArgument (bad hex),
  // MessageTooLarge (a stdin line over max_message), and those of ReadStdin.
  Result<std::optional<Bytes>> Next();
  // 1-based number of the last message returned, for error messages.
  std::size_t count() const { return count_; }

 private:
  std::vector<std::string> texts_;
  bool hex_;
  bool newline_;
  std::size_t next_text_ = 0;
  std::size_t count_ = 0;
  std::optional<StdinLines> lines_;
};

// Reads standard input on a background thread and hands the pieces to
// consumers one at a time, so that the main thread can wait on an object while
// input comes in. Holds at most two pieces. The thread may stay blocked in a
// read of standard input until the process exits; it owns only the shared
// state, never anything the command destroys.
class StdinPump {
 public:
  // `lines`: each piece is a line (hex-decoded with `hex`), at most
  // `max_piece` bytes; else each piece is a raw chunk of up to `max_piece`.
  static std::shared_ptr<StdinPump> Start(bool lines, bool hex, std::size_t max_piece);

  enum class Status { kPiece, kEnd, kError, kInterrupted };
  struct Taken {
    Status status = Status::kEnd;
    Bytes piece;
    std::optional<Error> error;  // kError
  };
  // Waits for the next piece, the end of input, or Interrupt().
  Taken Take();
  // Makes a waiting (or the next) Take return kInterrupted.
  void Interrupt();
  // Clears an Interrupt() so that Take waits again (for the next peer).
  void Rearm();
  // True once the end of input (or an error) has been taken.
  bool ended() const;

  struct State;
  explicit StdinPump(std::shared_ptr<State> state) : state_(std::move(state)) {}

 private:
  std::shared_ptr<State> state_;
};

}  // namespace interproc::cli

#endif  // INTERPROC_TOOLS_INTERPROC_TALK_H_
