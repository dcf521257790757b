#include "tls_fixtures.hpp"

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <thread>

#include <catch2/catch_test_macros.hpp>

namespace blitz::itest {

namespace {

constexpr Millis kStartTimeout{10'000};
constexpr Millis kStopTimeout{3'000};
constexpr Millis kOpensslTimeout{30'000};

/// Runs `openssl args...`; throws with its output when it fails.
void openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    CommandResult r = run_command(args, kOpensslTimeout);
    if (!r.status.exited_with(0)) {
        std::string line;
        for (const auto& a : args) {
            line += a + " ";
        }
        throw std::runtime_error("test PKI: `" + line + "` " + r.status.describe() + ":\n" + r.err +
                                 r.out);
    }
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The request and extension sections every openssl step reads, so that nothing depends on the
// system's openssl.cnf. @DIR@ is the PKI directory (openssl ca wants absolute paths).
constexpr std::string_view kOpensslConf = R"([req]
distinguished_name = dn
prompt = no
[dn]
CN = unused

[ca]
default_ca = intermediate
[intermediate]
database = @DIR@/index.txt
new_certs_dir = @DIR@/issued
serial = @DIR@/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied

[root_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server_a]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:a.test
[server_b]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:b.test
[server_wild]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:*.wild.test
[server_upstream]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:upstream.test, IP:127.0.0.1
[server_expired]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:expired.test
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://blitz.test/client1, DNS:client1.test
[client2]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:client2.elsewhere.test
[client3]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:client3.elsewhere.test, URI:spiffe://blitz.test/client1
)";

enum class KeyType { Ec, Rsa };

class PkiBuilder {
public:
    explicit PkiBuilder(const std::string& dir) : dir_(dir) {
        std::string conf(kOpensslConf);
        for (std::size_t at; (at = conf.find("@DIR@")) != std::string::npos;) {
            conf.replace(at, 5, dir_);
        }
        conf_ = file("openssl.cnf");
        write(conf_, conf);
        write(file("index.txt"), "");
        write(file("serial"), "2000\n");
        std::filesystem::create_directory(file("issued"));
    }

    std::string file(std::string_view name) const { return dir_ + "/" + std::string(name); }

    static void write(const std::string& path, std::string_view content) {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f.write(content.data(), static_cast<std::streamsize>(content.size()));
        if (!f) {
            throw std::runtime_error("test PKI: cannot write " + path);
        }
    }

    std::string key(std::string_view name, KeyType type) const {
        std::string path = file(std::string(name) + ".key");
        if (type == KeyType::Ec) {
            openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                     path});
        } else {
            openssl({"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                     path});
        }
        return path;
    }

    /// A self-signed CA: "NAME.pem" and "NAME.key".
    KeyPair self_signed_ca(std::string_view name, std::string_view cn) const {
        KeyPair ca{file(std::string(name) + ".pem"), key(name, KeyType::Ec)};
        openssl({"req", "-x509", "-new", "-config", conf_, "-key", ca.key, "-subj",
                 "/CN=" + std::string(cn), "-days", "30", "-extensions", "root_ca", "-out",
                 ca.cert});
        return ca;
    }

    /// "NAME.csr" for a new key.
    std::string csr(std::string_view name, KeyType type, std::string_view cn,
                    std::string& key_path) const {
        key_path = key(name, type);
        std::string path = file(std::string(name) + ".csr");
        openssl({"req", "-new", "-config", conf_, "-key", key_path, "-subj",
                 "/CN=" + std::string(cn), "-out", path});
        return path;
    }

    /// "NAME-leaf.pem" signed by `issuer` with extension section `ext`, serial `serial`; returns
    /// the leaf's path (the caller makes the chain file).
    std::string sign(std::string_view name, const std::string& csr_path, const KeyPair& issuer,
                     std::string_view ext, int serial) const {
        std::string leaf = file(std::string(name) + "-leaf.pem");
        openssl({"x509", "-req", "-in", csr_path, "-CA", issuer.cert, "-CAkey", issuer.key,
                 "-set_serial", std::to_string(serial), "-days", "30", "-extfile", conf_,
                 "-extensions", std::string(ext), "-out", leaf});
        return leaf;
    }

    /// A server certificate under the intermediate: "NAME.pem" holds the leaf and the
    /// intermediate, "NAME.key" the key.
    KeyPair server(std::string_view name, KeyType type, std::string_view cn, std::string_view ext,
                   int serial) const {
        KeyPair pair;
        std::string request = csr(name, type, cn, pair.key);
        std::string leaf = sign(name, request, intermediate, ext, serial);
        pair.cert = file(std::string(name) + ".pem");
        write(pair.cert, read_file(leaf) + read_file(intermediate.cert));
        return pair;
    }

    KeyPair intermediate;

private:
    std::string dir_;
    std::string conf_;
};

}  // namespace

std::string Pki::path(std::string_view name) const { return dir + "/" + std::string(name); }

const Pki& pki() {
    struct Holder {
        TempDir dir;
        Pki pki;
    };
    static const std::unique_ptr<Holder> holder = [] {
        auto h = std::make_unique<Holder>();
        Pki& p = h->pki;
        p.dir = h->dir.path();
        PkiBuilder b(p.dir);

        KeyPair root = b.self_signed_ca("ca", "Blitz Test Root CA");
        p.ca = root.cert;
        // The intermediate signs every server certificate, so a server that sends only its
        // leaf fails verification against the root alone: the tests see the full chain.
        std::string inter_key;
        std::string inter_csr = b.csr("intermediate", KeyType::Ec, "Blitz Test Intermediate CA",
                                      inter_key);
        openssl({"x509", "-req", "-in", inter_csr, "-CA", root.cert, "-CAkey", root.key,
                 "-set_serial", "4096", "-days", "30", "-extfile", b.file("openssl.cnf"),
                 "-extensions", "intermediate_ca", "-out", b.file("intermediate.pem")});
        b.intermediate = {b.file("intermediate.pem"), inter_key};

        p.a_ec = b.server("a-ec", KeyType::Ec, "a.test", "server_a", 4097);
        p.a_rsa = b.server("a-rsa", KeyType::Rsa, "a.test", "server_a", 4098);
        p.b_ec = b.server("b-ec", KeyType::Ec, "b.test", "server_b", 4099);
        p.b_rsa = b.server("b-rsa", KeyType::Rsa, "b.test", "server_b", 4100);
        p.wild_ec = b.server("wild-ec", KeyType::Ec, "*.wild.test", "server_wild", 4101);
        p.upstream = b.server("upstream", KeyType::Ec, "upstream.test", "server_upstream", 4102);
        p.mismatched = {p.a_ec.cert, p.b_ec.key};

        // Expired: `openssl x509` cannot set dates in the past, `openssl ca` can.
        std::string expired_key;
        std::string expired_csr = b.csr("expired", KeyType::Ec, "expired.test", expired_key);
        std::string expired_leaf = b.file("expired-leaf.pem");
        openssl({"ca", "-batch", "-config", b.file("openssl.cnf"), "-cert", b.intermediate.cert,
                 "-keyfile", b.intermediate.key, "-in", expired_csr, "-out", expired_leaf,
                 "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", "-extfile",
                 b.file("openssl.cnf"), "-extensions", "server_expired", "-notext"});
        p.expired = {b.file("expired.pem"), expired_key};
        PkiBuilder::write(p.expired.cert, read_file(expired_leaf) + read_file(b.intermediate.cert));

        KeyPair client_ca = b.self_signed_ca("client-ca", "Blitz Test Client CA");
        p.client_ca = client_ca.cert;
        std::string client_key;
        std::string client_csr = b.csr("client", KeyType::Ec, "client1", client_key);
        p.client = {b.sign("client", client_csr, client_ca, "client", 8193), client_key};
        std::string client2_key;
        std::string client2_csr = b.csr("client2", KeyType::Ec, "client2", client2_key);
        p.client2 = {b.sign("client2", client2_csr, client_ca, "client2", 8194), client2_key};
        std::string client3_key;
        std::string client3_csr = b.csr("client3", KeyType::Ec, "client3", client3_key);
        p.client3 = {b.sign("client3", client3_csr, client_ca, "client3", 8195), client3_key};

        KeyPair other = b.self_signed_ca("other-ca", "Blitz Other CA");
        p.other_ca = other.cert;
        std::string rogue_key;
        std::string rogue_csr = b.csr("rogue", KeyType::Ec, "rogue", rogue_key);
        p.rogue_client = {b.sign("rogue", rogue_csr, other, "client", 12289), rogue_key};

        // OCSP: the intermediate answers "good" for a.test's ECDSA certificate (serial 4097 =
        // 0x1001). The index is `openssl ca`'s database format: status, expiry, revocation,
        // serial, file, subject.
        PkiBuilder::write(b.file("ocsp-index.txt"), "V\t301231235959Z\t\t1001\tunknown\t/CN=a.test\n");
        openssl({"ocsp", "-issuer", b.intermediate.cert, "-cert", b.file("a-ec-leaf.pem"),
                 "-no_nonce", "-reqout", b.file("a-ec.ocsp-req.der")});
        p.a_ec_ocsp = b.file("a-ec.ocsp.der");
        openssl({"ocsp", "-index", b.file("ocsp-index.txt"), "-CA", b.intermediate.cert,
                 "-rsigner", b.intermediate.cert, "-rkey", b.intermediate.key, "-reqin",
                 b.file("a-ec.ocsp-req.der"), "-respout", p.a_ec_ocsp, "-ndays", "7"});

        p.not_pem = b.file("not-pem.pem");
        PkiBuilder::write(p.not_pem, "this is not a certificate\n");
        p.missing = b.file("no-such-file.pem");
        return h;
    }();
    return holder->pki;
}

std::string json_quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "\"";
}

std::string cert_entry(const KeyPair& pair, const std::vector<std::string>& server_names,
                       std::string_view ocsp_staple) {
    std::string out = "{\"cert\": " + json_quote(pair.cert) + ", \"key\": " + json_quote(pair.key);
    if (!server_names.empty()) {
        out += ", \"server_names\": [";
        for (std::size_t i = 0; i < server_names.size(); ++i) {
            out += (i > 0 ? ", " : "") + json_quote(server_names[i]);
        }
        out += "]";
    }
    if (!ocsp_staple.empty()) {
        out += ", \"ocsp_staple\": " + json_quote(ocsp_staple);
    }
    return out + "}";
}

std::string tls_listener(std::string_view tls) {
    return R"([{"name": "main", "address": "127.0.0.1:0", "tls": )" + std::string(tls) + "}]";
}

std::string tls_config(std::string_view listeners, std::string_view routes,
                       std::string_view upstreams) {
    return "{\n  \"workers\": 1,\n  \"listeners\": " + std::string(listeners) +
           ",\n  \"upstreams\": " + std::string(upstreams) + ",\n  \"routes\": " +
           std::string(routes) + "\n}\n";
}

const char* const kTlsRoutes = R"([
    { "name": "hello", "match": { "path": "/hello", "methods": ["GET"] },
      "respond": { "status": 200, "body": "Hello, World!", "content_type": "text/plain" } },
    { "name": "any", "match": { "path": "/any" },
      "respond": { "status": 200, "body": "any" } }
  ])";

// ---------------------------------------------------------------------------------------------
// TlsBlitzd

namespace {

constexpr std::string_view kListening = "listening on ";

/// Complete "listening on http(s)://HOST:PORT/" lines in `log`.
std::vector<std::uint16_t> listening_ports(std::string_view log) {
    std::vector<std::uint16_t> ports;
    std::size_t pos = 0;
    while ((pos = log.find(kListening, pos)) != std::string_view::npos) {
        pos += kListening.size();
        std::size_t eol = log.find('\n', pos);
        if (eol == std::string_view::npos) {
            break;
        }
        std::string_view line = log.substr(pos, eol - pos);
        std::size_t scheme = line.find("://");
        if (line.substr(0, 4) != "http" || scheme == std::string_view::npos) {
            continue;
        }
        std::string_view authority = line.substr(scheme + 3);
        authority = authority.substr(0, authority.find('/'));
        std::size_t colon = authority.rfind(':');
        if (colon == std::string_view::npos) {
            continue;
        }
        std::string_view digits = authority.substr(colon + 1);
        if (digits.empty() || digits.size() > 5 ||
            !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            continue;
        }
        ports.push_back(static_cast<std::uint16_t>(std::stoul(std::string(digits))));
    }
    return ports;
}

}  // namespace

TlsBlitzd::TlsBlitzd(std::string_view json, std::size_t listeners, std::string_view config_dir) {
    if (blitzd_path().empty()) {
        throw std::runtime_error("BLITZD is not set");
    }
    if (config_dir.empty()) {
        dir_ = std::make_unique<TempDir>();
        config_path_ = dir_->write("blitzd.json", with_backend(json));
    } else {
        static int counter = 0;
        config_path_ = std::string(config_dir) + "/blitzd-" + std::to_string(++counter) + ".json";
        PkiBuilder::write(config_path_, with_backend(json));
        remove_config_ = true;
    }
    process_ = std::make_unique<Process>(std::vector<std::string>{blitzd_path(), "--config",
                                                                  config_path_});
    auto announced = [listeners](const std::string& err) {
        return listening_ports(err).size() >= listeners;
    };
    if (!process_->wait_for_stderr(announced, kStartTimeout)) {
        ExitStatus st = process_->stop(SIGKILL, kStopTimeout);
        throw std::runtime_error("blitzd did not announce " + std::to_string(listeners) +
                                 " listener(s) (" + st.describe() + "); config:\n" +
                                 with_backend(json) + "\nstderr:\n" + process_->err());
    }
    ports_ = listening_ports(process_->err());
}

TlsBlitzd::~TlsBlitzd() {
    if (!stopped_) {
        ExitStatus st = process_->stop(SIGTERM, kStopTimeout);
        INFO("blitzd stderr:\n" << process_->err());
        CHECK(st.exited_with(0));
    }
    if (remove_config_) {
        std::remove(config_path_.c_str());
    }
}

std::string TlsBlitzd::https_url(std::string_view host, std::string_view path,
                                 std::size_t i) const {
    return "https://" + std::string(host) + ":" + std::to_string(port(i)) + std::string(path);
}

std::string TlsBlitzd::http_url(std::string_view path, std::size_t i) const {
    return "http://127.0.0.1:" + std::to_string(port(i)) + std::string(path);
}

std::string TlsBlitzd::resolve(std::string_view host, std::size_t i) const {
    return std::string(host) + ":" + std::to_string(port(i)) + ":127.0.0.1";
}

Client TlsBlitzd::connect(std::size_t i) const { return Client("127.0.0.1", port(i)); }

ExitStatus TlsBlitzd::stop(int sig) {
    stopped_ = true;
    return process_->stop(sig, kStopTimeout);
}

CommandResult blitzd_refuses(std::string_view json) {
    TempDir dir;
    std::string config = dir.write("blitzd.json", with_backend(json));
    return run_command({blitzd_path(), "--config", config}, Millis(10'000));
}

CommandResult curl_https(const TlsBlitzd& server, std::string_view host,
                         std::vector<std::string> args) {
    std::vector<std::string> all = {"--resolve", server.resolve(host), "--cacert", pki().ca};
    all.insert(all.end(), args.begin(), args.end());
    return curl(all);
}

CommandResult s_client(std::uint16_t port, const std::vector<std::string>& args,
                       std::string_view input) {
    std::vector<std::string> argv = {"openssl", "s_client", "-connect",
                                     "127.0.0.1:" + std::to_string(port)};
    argv.insert(argv.end(), args.begin(), args.end());
    if (input.empty()) {
        return run_command(argv, Millis(10'000));
    }
    // The harness gives children /dev/null for stdin: a shell redirects the input file.
    TempDir dir;
    std::string file = dir.write("input", input);
    argv.push_back("-ign_eof");
    std::vector<std::string> sh = {"sh", "-c", "exec \"$@\" < \"$0\"", file};
    sh.insert(sh.end(), argv.begin(), argv.end());
    return run_command(sh, Millis(10'000));
}

namespace {

/// The rest of the first line of `text` that starts with `prefix`; nullopt when none does.
std::optional<std::string> line_after(std::string_view text, std::string_view prefix) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        std::string_view line = text.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
            line.remove_prefix(1);
        }
        if (line.substr(0, prefix.size()) == prefix) {
            std::string_view rest = line.substr(prefix.size());
            while (!rest.empty() && (rest.back() == '\r' || rest.back() == ' ')) {
                rest.remove_suffix(1);
            }
            return std::string(rest);
        }
        if (eol == std::string_view::npos) {
            break;
        }
        pos = eol + 1;
    }
    return std::nullopt;
}

}  // namespace

SClientReport parse_s_client(const CommandResult& r) {
    SClientReport rep;
    rep.text = r.out + r.err;
    // "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384"; "New, (NONE), Cipher is (NONE)" when the
    // handshake failed.
    auto session = line_after(r.out, "New, ");
    if (!session) {
        session = line_after(r.out, "Reused, ");
        rep.reused = session.has_value();
    }
    if (session && session->find("(NONE)") == std::string::npos) {
        rep.handshake = true;
        rep.version = session->substr(0, session->find(','));
    }
    rep.subject = line_after(r.out, "subject=").value_or("");
    rep.alpn = line_after(r.out, "ALPN protocol: ").value_or("");
    if (auto bits = line_after(r.out, "Server public key is ")) {
        rep.server_key_bits = std::atoi(bits->c_str());
    }
    rep.peer_sig_type = line_after(r.out, "Peer signature type: ").value_or("");
    rep.verified = line_after(r.out, "Verify return code: 0 (ok)").has_value();
    return rep;
}

std::string cert_sha256(const std::string& cert_file) {
    CommandResult r = run_command(
        {"openssl", "x509", "-in", cert_file, "-noout", "-fingerprint", "-sha256"}, kOpensslTimeout);
    // "sha256 Fingerprint=AB:CD:..." (the label's case varies between versions).
    std::size_t eq = r.out.find('=');
    if (!r.status.exited_with(0) || eq == std::string::npos) {
        throw std::runtime_error("openssl x509 -fingerprint failed: " + r.err);
    }
    std::string hex;
    for (char c : r.out.substr(eq + 1)) {
        if (std::isxdigit(static_cast<unsigned char>(c)) != 0) {
            hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    return hex;
}

// ---------------------------------------------------------------------------------------------
// nginx with TLS

Nginx nginx_tls(const KeyPair& pair, std::string_view server_extra, std::string_view listen_flags) {
    return Nginx("    ssl_certificate " + pair.cert + ";\n"
                 "    ssl_certificate_key " + pair.key + ";\n"
                 "    ssl_protocols TLSv1.2 TLSv1.3;\n"
                 "    add_header X-Reused $ssl_session_reused always;\n"
                 "    add_header X-SNI $ssl_server_name always;\n"
                 "    add_header X-Client-Verify $ssl_client_verify always;\n" +
                     std::string(server_extra),
                 listen_flags);
}

}  // namespace blitz::itest
