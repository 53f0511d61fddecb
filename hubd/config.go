package hubd

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// Config is the hub process configuration (spec/api.md §9), loaded in layers:
// built-in defaults < <config_dir>/hub.default.json < <config_dir>/hub.user.json
// (deep-merged), or instead of both files one explicit file (--config /
// PYLABHUB_CONFIG_FILE); then the environment overrides PYLABHUB_HUB_NAME,
// PYLABHUB_BROKER_ENDPOINT, PYLABHUB_ADMIN_ENDPOINT, PYLABHUB_USE_CURVE,
// PYLABHUB_CURVE_KEYS_DIR, PYLABHUB_BROKER_<LIMIT> (config_limits.go). Keys:
// docs/config.md.
type Config struct {
	Hub struct {
		Name           string `json:"name"`
		Description    string `json:"description"`
		UID            string `json:"uid"`
		BrokerEndpoint string `json:"broker_endpoint"`
		AdminEndpoint  string `json:"admin_endpoint"`
	} `json:"hub"`
	Admin struct {
		Token string `json:"token"`
	} `json:"admin"`
	Broker struct {
		ChannelTimeoutS        float64 `json:"channel_timeout_s"`
		ConsumerLivenessCheckS float64 `json:"consumer_liveness_check_s"`
		ConsumerTimeoutS       float64 `json:"consumer_timeout_s"`
		ChecksumRepairPolicy   string  `json:"checksum_repair_policy"`
		MaxFrameBytes          int     `json:"max_frame_bytes"`
		PeerQueue              int     `json:"peer_queue"`
		UseCurve               bool    `json:"use_curve"`
		// Trace, TracePath and TraceMaxBytes: the protocol trace at start
		// (B-13; broker.TraceConfig; TracePath "" = the hub's log).
		Trace         bool   `json:"trace"`
		TracePath     string `json:"trace_path"`
		TraceMaxBytes int64  `json:"trace_max_bytes"`
		// BrokerLimits: max_channels … stale_consumer_age_s (config_limits.go).
		BrokerLimits
	} `json:"broker"`
	Paths struct {
		ScriptsPython string `json:"scripts_python"`
		ScriptsLua    string `json:"scripts_lua"`
		DataDir       string `json:"data_dir"`
		ConfigDir     string `json:"config_dir"`
	} `json:"paths"`
	Python struct {
		StartupScript *string `json:"startup_script"`
		Requirements  string  `json:"requirements"`
	} `json:"python"`
	Security struct {
		AdminMode    string  `json:"admin_mode"`
		CurveKeysDir *string `json:"curve_keys_dir"`
		// AllowedClients is a list of Z85 client keys or the name of a file
		// holding them (config_security.go).
		AllowedClients ClientKeys `json:"allowed_clients"`
	} `json:"security"`

	// ConfigDir is the directory the files were read from ("" = defaults only).
	ConfigDir string `json:"-"`
	// Sources lists the files that were merged, in order.
	Sources []string `json:"-"`
	// Raw is the merged JSON object, for modules with keys of their own.
	Raw map[string]any `json:"-"`
}

// ChannelTimeout returns broker.channel_timeout_s as a duration (≤0 → disabled: -1).
func (c *Config) ChannelTimeout() time.Duration { return secs(c.Broker.ChannelTimeoutS) }

// ConsumerLivenessCheck returns broker.consumer_liveness_check_s (0 → disabled: -1).
func (c *Config) ConsumerLivenessCheck() time.Duration {
	return secs(c.Broker.ConsumerLivenessCheckS)
}

// ConsumerTimeout returns broker.consumer_timeout_s (≤0 → disabled: -1).
func (c *Config) ConsumerTimeout() time.Duration { return secs(c.Broker.ConsumerTimeoutS) }

func secs(s float64) time.Duration {
	if s <= 0 {
		return -1
	}
	return time.Duration(s * float64(time.Second))
}

// DefaultConfigJSON is the built-in default layer.
const DefaultConfigJSON = `{
  "hub": {"name": "local.hub.default", "description": "pyLabHub instance", "uid": "",
          "broker_endpoint": "tcp://0.0.0.0:5570", "admin_endpoint": "tcp://127.0.0.1:5600"},
  "admin": {"token": ""},
  "broker": {"channel_timeout_s": 10, "consumer_liveness_check_s": 5, "consumer_timeout_s": 10,
             "checksum_repair_policy": "None", "max_frame_bytes": 1048576, "peer_queue": 1024,
             "use_curve": true, "max_channels": 100000, "max_consumers_per_channel": 1024,
             "max_name_bytes": 256, "max_metadata_bytes": 65536, "max_field_bytes": 1024,
             "max_body_bytes": 262144, "list_page": 1000, "list_page_bytes": 524288,
             "stale_consumer_age_s": 3600,
             "trace": false, "trace_path": "", "trace_max_bytes": 67108864},
  "paths": {"scripts_python": "../share/scripts/python", "scripts_lua": "../share/scripts/lua",
            "data_dir": "../data", "config_dir": "../config"},
  "python": {"startup_script": null, "requirements": "../share/scripts/python/requirements.txt"},
  "security": {"admin_mode": "local", "curve_keys_dir": null, "allowed_clients": null}
}`

// Sources says where LoadConfig looks. Zero fields: ExplicitFile
// from PYLABHUB_CONFIG_FILE, ConfigDir from the executable's location, Getenv
// os.Getenv.
type Sources struct {
	ExplicitFile string              // used instead of the two config_dir files
	ConfigDir    string              // where hub.default.json and hub.user.json live
	Getenv       func(string) string // environment lookup
	Logger       *slog.Logger        // skipped files are logged here (nil → discard)
}

// LoadConfig builds the layered configuration. A key of the wrong JSON type in
// any layer, or an unreadable/invalid explicit file, is an ErrConfig naming the
// file and key; invalid files in config_dir are skipped with a warning (original).
func LoadConfig(src Sources) (*Config, error) {
	getenv := src.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	log := src.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var merged map[string]any
	if err := json.Unmarshal([]byte(DefaultConfigJSON), &merged); err != nil {
		return nil, fmt.Errorf("%w: built-in defaults: %v", ErrConfig, err)
	}
	cfg := &Config{}
	explicit := src.ExplicitFile
	if explicit == "" {
		explicit = getenv("PYLABHUB_CONFIG_FILE")
	}
	layer := func(path string, required bool) error {
		b, err := os.ReadFile(path)
		if err != nil {
			if required {
				return fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
			}
			if !errors.Is(err, os.ErrNotExist) {
				log.Warn("config file skipped", "file", path, "err", err)
			}
			return nil
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&m); err != nil || m == nil {
			if required {
				return fmt.Errorf("%w: %s: not a JSON object: %v", ErrConfig, path, err)
			}
			log.Warn("config file skipped: not a JSON object", "file", path, "err", err)
			return nil
		}
		// Type-check this layer on its own so the error names the file.
		if err := decodeInto(m, &Config{}); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
		}
		deepMerge(merged, m)
		cfg.Sources = append(cfg.Sources, path)
		return nil
	}
	if explicit != "" {
		cfg.ConfigDir = filepath.Dir(explicit)
		if err := layer(explicit, true); err != nil {
			return nil, err
		}
	} else {
		dir := src.ConfigDir
		if dir == "" {
			dir = findConfigDir()
		}
		cfg.ConfigDir = dir
		if dir != "" {
			for _, f := range []string{"hub.default.json", "hub.user.json"} {
				if err := layer(filepath.Join(dir, f), false); err != nil {
					return nil, err
				}
			}
		}
	}
	hubObj, _ := merged["hub"].(map[string]any)
	if hubObj == nil {
		hubObj = map[string]any{}
		merged["hub"] = hubObj
	}
	for env, key := range map[string]string{"PYLABHUB_HUB_NAME": "name", "PYLABHUB_BROKER_ENDPOINT": "broker_endpoint", "PYLABHUB_ADMIN_ENDPOINT": "admin_endpoint"} {
		if v := getenv(env); v != "" {
			hubObj[key] = v
		}
	}
	if err := securityEnv(merged, getenv); err != nil {
		return nil, err
	}
	if err := limitsEnv(merged, getenv); err != nil {
		return nil, err
	}
	if err := decodeInto(merged, cfg); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	cfg.Raw = merged
	if cfg.Hub.UID == "" {
		cfg.Hub.UID = GenerateUID(cfg.Hub.Name)
	} else if !strings.HasPrefix(cfg.Hub.UID, "HUB-") {
		log.Warn("hub.uid does not start with HUB-", "uid", cfg.Hub.UID)
	}
	switch cfg.Broker.ChecksumRepairPolicy {
	case "", "None", "NotifyOnly", "Repair":
	default:
		return nil, fmt.Errorf("%w: broker.checksum_repair_policy %q: want None, NotifyOnly or Repair", ErrConfig, cfg.Broker.ChecksumRepairPolicy)
	}
	return cfg, nil
}

func decodeInto(m map[string]any, out *Config) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("key %q: JSON %s where %s expected", te.Field, te.Value, te.Type)
		}
		return err
	}
	return nil
}

// deepMerge merges src into dst: objects merge recursively, anything else replaces.
func deepMerge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				deepMerge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func findConfigDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	dir := filepath.Dir(exe)
	for _, c := range []string{filepath.Join(dir, "..", "config"), filepath.Join(dir, "config")} {
		if st, err := os.Stat(c); err == nil && st.IsDir() {
			return filepath.Clean(c)
		}
	}
	return ""
}

// GenerateUID returns HUB-<NAME>-<8 hex> per spec/api.md §9.2.
func GenerateUID(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range name {
		if b.Len() >= 8 {
			break
		}
		switch {
		case unicode.IsSpace(r): // "my lab hub" → MYLABHUB (spec example)
		case unicode.IsLetter(r) && r < 128:
			b.WriteRune(unicode.ToUpper(r))
			dash = false
		case unicode.IsDigit(r) && r < 128:
			b.WriteRune(r)
			dash = false
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	n := strings.TrimRight(b.String(), "-")
	if n == "" {
		n = "NODE"
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return "HUB-" + n + "-" + strings.ToUpper(hex.EncodeToString(rnd[:]))
}
