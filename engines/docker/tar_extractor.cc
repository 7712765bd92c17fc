#include "engines/docker/tar_extractor.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_split.h"
#include "common/status.h"

namespace drover::engines::docker {
namespace {

constexpr size_t kBlock = 512;
// PAX and GNU long-name entries are small; anything larger is corrupt.
constexpr uint64_t kMaxMetaSize = 1 << 20;

std::string Field(const char* p, size_t n) {
  return std::string(p, strnlen(p, n));
}

// Octal (NUL/space padded) or GNU base-256 (high bit of the first byte).
bool ParseNumber(const char* p, size_t n, uint64_t* out) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  if (u[0] & 0x80) {
    if (u[0] & 0x40) return false;  // negative
    uint64_t v = u[0] & 0x3f;
    for (size_t i = 1; i < n; ++i) {
      if (v >> 56) return false;
      v = (v << 8) | u[i];
    }
    *out = v;
    return true;
  }
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\0')) ++i;
  uint64_t v = 0;
  bool any = false;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v >> 60) return false;
    v = v * 8 + static_cast<uint64_t>(p[i] - '0');
    any = true;
  }
  for (; i < n; ++i) {
    if (p[i] != ' ' && p[i] != '\0') return false;
  }
  *out = any ? v : 0;
  return true;
}

std::vector<std::string> Components(const std::string& name) {
  std::vector<std::string> out;
  for (absl::string_view c : absl::StrSplit(name, '/')) {
    if (c.empty() || c == ".") continue;
    out.emplace_back(c.data(), c.size());
  }
  return out;
}

absl::Status Escapes(const std::string& name, std::string_view why) {
  return InputError("archive.entry", name,
                    std::string("refusing archive entry: ") + std::string(why));
}

absl::Status OsError(std::string_view what, const std::filesystem::path& p,
                     int err) {
  return MakeError(ErrorCode::kInternalError,
                   std::string(what) + ": " + std::strerror(err),
                   {{"path", p.string()}});
}

// Resolves the symbolic link `link` (below `root`) the way the kernel would,
// one component at a time, and says whether every step stays below `root`.
// Components that do not exist are taken literally (they cannot be links).
bool StaysInside(const std::filesystem::path& root,
                 const std::filesystem::path& link) {
  constexpr int kMaxLinks = 40;
  std::vector<std::string> at =
      Components(link.parent_path().lexically_relative(root).string());
  if (!at.empty() && at.front() == "..") return false;
  auto read_link = [](const std::filesystem::path& p, std::string* out) {
    char buf[4096];
    ssize_t n = ::readlink(p.c_str(), buf, sizeof(buf));
    if (n < 0) return false;
    out->assign(buf, static_cast<size_t>(n));
    return true;
  };
  std::string target;
  if (!read_link(link, &target) || target.empty() || target.front() == '/') {
    return false;
  }
  std::vector<std::string> pending = Components(target);
  // Components() drops "." and empty parts but keeps "..".
  int followed = 0;
  while (!pending.empty()) {
    std::string c = pending.front();
    pending.erase(pending.begin());
    if (c == "..") {
      if (at.empty()) return false;
      at.pop_back();
      continue;
    }
    std::filesystem::path candidate = root;
    for (const std::string& part : at) candidate /= part;
    candidate /= c;
    struct stat st;
    if (::lstat(candidate.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      if (++followed > kMaxLinks) return false;
      std::string next;
      if (!read_link(candidate, &next) || next.empty() || next.front() == '/') {
        return false;
      }
      std::vector<std::string> more = Components(next);
      pending.insert(pending.begin(), more.begin(), more.end());
      continue;
    }
    at.push_back(c);
  }
  return true;
}

}  // namespace

TarExtractor::TarExtractor(std::filesystem::path target, std::string top_name)
    : target_(std::move(target)), top_name_(std::move(top_name)) {}

TarExtractor::~TarExtractor() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status TarExtractor::Fail(absl::Status status) {
  if (error_.ok()) error_ = status;
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  return error_;
}

absl::Status TarExtractor::Feed(std::string_view chunk) {
  if (!error_.ok()) return error_;
  while (!chunk.empty()) {
    switch (phase_) {
      case Phase::kHeader: {
        size_t n = std::min(kBlock - block_len_, chunk.size());
        std::memcpy(block_ + block_len_, chunk.data(), n);
        block_len_ += n;
        chunk.remove_prefix(n);
        if (block_len_ == kBlock) {
          block_len_ = 0;
          if (absl::Status s = OnHeader(); !s.ok()) return Fail(s);
        }
        break;
      }
      case Phase::kData: {
        size_t n =
            static_cast<size_t>(std::min<uint64_t>(data_left_, chunk.size()));
        if (absl::Status s = OnDataChunk(chunk.substr(0, n)); !s.ok()) {
          return Fail(s);
        }
        data_left_ -= n;
        chunk.remove_prefix(n);
        if (data_left_ == 0) {
          if (absl::Status s = EndEntry(); !s.ok()) return Fail(s);
          phase_ = padding_left_ > 0 ? Phase::kPadding : Phase::kHeader;
        }
        break;
      }
      case Phase::kPadding: {
        size_t n = static_cast<size_t>(
            std::min<uint64_t>(padding_left_, chunk.size()));
        padding_left_ -= n;
        chunk.remove_prefix(n);
        if (padding_left_ == 0) phase_ = Phase::kHeader;
        break;
      }
      case Phase::kEnd:
        // Writers pad the archive to a record size after the end marker.
        return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::Status TarExtractor::OnHeader() {
  if (std::all_of(block_, block_ + kBlock, [](char c) { return c == 0; })) {
    if (saw_zero_block_) phase_ = Phase::kEnd;
    saw_zero_block_ = true;
    return absl::OkStatus();
  }
  saw_zero_block_ = false;

  uint64_t stored = 0;
  if (!ParseNumber(block_ + 148, 8, &stored)) {
    return InternalError("corrupt tar header: bad checksum field");
  }
  uint64_t unsigned_sum = 0;
  int64_t signed_sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    char c = (i >= 148 && i < 156) ? ' ' : block_[i];
    unsigned_sum += static_cast<unsigned char>(c);
    signed_sum += static_cast<signed char>(c);
  }
  if (stored != unsigned_sum && static_cast<int64_t>(stored) != signed_sum) {
    return InternalError("corrupt tar header: checksum mismatch");
  }

  uint64_t size = 0;
  uint64_t mode = 0;
  if (!ParseNumber(block_ + 124, 12, &size) ||
      !ParseNumber(block_ + 100, 8, &mode)) {
    return InternalError("corrupt tar header: bad size or mode");
  }
  char type = block_[156];
  std::string name = Field(block_, 100);
  if (std::memcmp(block_ + 257, "ustar\0", 6) == 0) {
    std::string prefix = Field(block_ + 345, 155);
    if (!prefix.empty()) name = prefix + "/" + name;
  }
  std::string link = Field(block_ + 157, 100);
  if (next_name_) name = *std::exchange(next_name_, std::nullopt);
  if (next_link_) link = *std::exchange(next_link_, std::nullopt);
  if (next_size_) size = *std::exchange(next_size_, std::nullopt);

  entry_type_ = type;
  entry_name_ = name;
  meta_.clear();
  bool is_meta = type == 'x' || type == 'g' || type == 'L' || type == 'K';
  if (is_meta) {
    if (size > kMaxMetaSize) {
      return InternalError("corrupt tar archive: oversized extended header");
    }
  } else {
    DROVER_RETURN_IF_ERROR(
        BeginEntry(type, name, link, size, static_cast<uint32_t>(mode)));
  }
  data_left_ = size;
  padding_left_ = (kBlock - size % kBlock) % kBlock;
  if (size == 0) {
    DROVER_RETURN_IF_ERROR(EndEntry());
    phase_ = Phase::kHeader;
  } else {
    phase_ = Phase::kData;
  }
  return absl::OkStatus();
}

absl::Status TarExtractor::MapName(const std::string& name, bool create_parents,
                                   std::filesystem::path* out) {
  if (!name.empty() && name.front() == '/') {
    return Escapes(name, "absolute path");
  }
  std::vector<std::string> parts = Components(name);
  for (const std::string& p : parts) {
    if (p == "..") return Escapes(name, "'..' component");
  }
  if (!top_name_.empty()) {
    if (parts.empty() || parts.front() != top_name_) {
      return Escapes(name, "outside the requested path");
    }
    parts.erase(parts.begin());
  }
  std::filesystem::path path = target_;
  std::error_code ec;
  std::filesystem::create_directories(target_.parent_path(), ec);
  if (ec)
    return OsError("cannot create directory", target_.parent_path(),
                   ec.value());
  // Every directory between the target and the entry must be a real
  // directory: writing through a link could land anywhere.
  for (const std::string& part : parts) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno != ENOENT || !create_parents) {
        return OsError("cannot reach parent directory", path, errno);
      }
      if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
        return OsError("cannot create directory", path, errno);
      }
    } else if (S_ISLNK(st.st_mode)) {
      return Escapes(name, "path goes through a symbolic link");
    } else if (!S_ISDIR(st.st_mode)) {
      return Escapes(name, "parent is not a directory");
    }
    path /= part;
  }
  *out = path;
  return absl::OkStatus();
}

absl::Status TarExtractor::BeginEntry(char type, const std::string& name,
                                      const std::string& link, uint64_t size,
                                      uint32_t mode) {
  std::filesystem::path path;
  switch (type) {
    case '0':
    case '\0':
    case '7': {
      DROVER_RETURN_IF_ERROR(MapName(name, true, &path));
      fd_ = ::open(path.c_str(),
                   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                   (mode & 0777) | 0600);
      if (fd_ < 0) {
        if (errno == ELOOP) return Escapes(name, "file is a symbolic link");
        return OsError("cannot create file", path, errno);
      }
      entry_path_ = path;
      entry_mode_ = (mode & 0777) | 0600;
      return absl::OkStatus();
    }
    case '5': {
      DROVER_RETURN_IF_ERROR(MapName(name, true, &path));
      struct stat st;
      if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
          return Escapes(name,
                         "directory entry over an existing non-directory");
        }
      } else if (::mkdir(path.c_str(), 0700) != 0) {
        return OsError("cannot create directory", path, errno);
      }
      ::chmod(path.c_str(), (mode & 0777) | 0700);
      ++extracted_;
      return absl::OkStatus();
    }
    case '2': {
      if (link.empty() || link.front() == '/') {
        return Escapes(name,
                       "symbolic link to an absolute path ('" + link + "')");
      }
      DROVER_RETURN_IF_ERROR(MapName(name, true, &path));
      if (::symlink(link.c_str(), path.c_str()) != 0) {
        return OsError("cannot create symbolic link", path, errno);
      }
      links_.emplace_back(path, name);
      ++extracted_;
      return absl::OkStatus();
    }
    case '1': {
      std::filesystem::path source;
      DROVER_RETURN_IF_ERROR(MapName(link, false, &source));
      DROVER_RETURN_IF_ERROR(MapName(name, true, &path));
      struct stat st;
      if (::lstat(source.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        skipped_.push_back(name + " (hard link to '" + link +
                           "', which is not an extracted file)");
        return absl::OkStatus();
      }
      if (::link(source.c_str(), path.c_str()) != 0) {
        return OsError("cannot create hard link", path, errno);
      }
      ++extracted_;
      return absl::OkStatus();
    }
    case '3':
    case '4':
    case '6':
      skipped_.push_back(name + " (device node or FIFO)");
      return absl::OkStatus();
    default:
      skipped_.push_back(name + " (unsupported tar entry type '" +
                         std::string(1, type) + "')");
      (void)size;
      return absl::OkStatus();
  }
}

absl::Status TarExtractor::OnDataChunk(std::string_view data) {
  if (entry_type_ == 'x' || entry_type_ == 'g' || entry_type_ == 'L' ||
      entry_type_ == 'K') {
    meta_.append(data);
    return absl::OkStatus();
  }
  while (fd_ >= 0 && !data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return OsError("cannot write file", entry_path_, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status TarExtractor::EndEntry() {
  switch (entry_type_) {
    case 'x':
      ParsePax(meta_);
      break;
    case 'L':
      next_name_ = Field(meta_.data(), meta_.size());
      break;
    case 'K':
      next_link_ = Field(meta_.data(), meta_.size());
      break;
    case 'g':
      break;
    default:
      if (fd_ >= 0) {
        // The umask may have narrowed the mode given to open().
        ::fchmod(fd_, entry_mode_);
        int rc = ::close(fd_);
        fd_ = -1;
        if (rc != 0) return OsError("cannot write file", entry_path_, errno);
        ++extracted_;
      }
  }
  meta_.clear();
  return absl::OkStatus();
}

void TarExtractor::ParsePax(std::string_view records) {
  // Each record is "<length> <key>=<value>\n", length counting the whole
  // record.
  while (!records.empty()) {
    size_t space = records.find(' ');
    if (space == std::string_view::npos) return;
    size_t len = 0;
    for (char c : records.substr(0, space)) {
      if (c < '0' || c > '9') return;
      len = len * 10 + static_cast<size_t>(c - '0');
      if (len > records.size()) return;
    }
    if (len <= space + 1) return;
    std::string_view record = records.substr(space + 1, len - space - 1);
    records.remove_prefix(len);
    if (!record.empty() && record.back() == '\n') record.remove_suffix(1);
    size_t eq = record.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = record.substr(0, eq);
    std::string value(record.substr(eq + 1));
    if (key == "path") {
      next_name_ = value;
    } else if (key == "linkpath") {
      next_link_ = value;
    } else if (key == "size") {
      uint64_t v = 0;
      bool ok = !value.empty();
      for (char c : value) {
        ok &= c >= '0' && c <= '9';
        if (ok) v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      if (ok) next_size_ = v;
    }
  }
}

absl::Status TarExtractor::Finish() {
  if (!error_.ok()) return error_;
  if (phase_ == Phase::kData || phase_ == Phase::kPadding || block_len_ > 0) {
    return Fail(MakeError(ErrorCode::kInternalError,
                          "tar archive ended inside an entry",
                          {{"entry", entry_name_}}));
  }
  if (extracted_ == 0 && skipped_.empty()) {
    return Fail(InternalError("tar archive held no entries"));
  }
  for (const auto& [path, name] : links_) {
    if (!StaysInside(target_, path)) {
      return Fail(Escapes(name,
                          "symbolic link resolves outside the "
                          "extracted tree"));
    }
  }
  return absl::OkStatus();
}

}  // namespace drover::engines::docker
