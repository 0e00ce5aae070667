package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pocketkms/kms"
)

func (a *app) initCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the store and its root key",
		Long: `Create the store (by default a SQLite file in the user's data directory)
and set its root key: from a passphrase (POCKETKMS_PASSPHRASE, or asked
twice on a terminal; argon2id), or from --key-file or --key-env. Every
later command needs the same passphrase or key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, audit, err := a.paths()
			if err != nil {
				return err
			}
			if a.store == nil {
				if err := a.refuseInitialized(cmd.Context(), dsn); err != nil {
					return err
				}
			}
			if _, _, err := a.open(cmd.Context(), true); err != nil {
				return err
			}
			shown := redactDSN(dsn)
			return a.print(map[string]string{"store": shown, "audit_log": audit}, func(w io.Writer) {
				fmt.Fprintf(w, "initialized %s\naudit log  %s\n", shown, audit)
			})
		},
	}
}

// refuseInitialized fails if the store already has a root key.
func (a *app) refuseInitialized(ctx context.Context, dsn string) error {
	if !isPostgres(dsn) {
		if _, err := statFile(dsn); err != nil {
			return nil // no file: a new store
		}
	}
	s, err := openStore(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.GetSetting(ctx, "root.check"); err == nil {
		return &hintError{exitUsage, fmt.Sprintf("%s is already initialized: use it as it is, or pass --store for a new one", redactDSN(dsn)), nil}
	}
	return nil
}

// keyRow is a key as list and describe print it.
type keyRow struct {
	KeyID       string    `json:"key_id"`
	Arn         string    `json:"arn"`
	Aliases     []string  `json:"aliases,omitempty"`
	Spec        string    `json:"spec"`
	Usage       string    `json:"usage"`
	State       string    `json:"state"`
	Versions    int       `json:"versions"`
	Primary     uint32    `json:"primary_version"`
	Created     time.Time `json:"created"`
	Description string    `json:"description,omitempty"`
	Deletion    string    `json:"deletion_date,omitempty"`
	Origin      string    `json:"origin"`
}

func rowOf(m *kms.KeyMetadata, aliases []string) keyRow {
	r := keyRow{
		KeyID: m.KeyID, Arn: m.Arn, Aliases: aliases, Spec: string(m.KeySpec), Usage: string(m.KeyUsage),
		State: string(m.KeyState), Versions: m.Versions, Primary: m.PrimaryVersion, Created: m.CreationDate,
		Description: m.Description, Origin: string(m.Origin),
	}
	if !m.DeletionDate.IsZero() {
		r.Deletion = m.DeletionDate.Format(time.DateOnly)
	}
	return r
}

func aliasesOf(ctx context.Context, r *kms.KeyRing, keyID string) ([]string, error) {
	var names []string
	marker := ""
	for {
		out, err := r.ListAliases(ctx, kms.ListAliasesInput{KeyID: keyID, Limit: 100, Marker: marker})
		if err != nil {
			return nil, err
		}
		for _, al := range out.Aliases {
			names = append(names, al.AliasName)
		}
		if !out.Truncated {
			return names, nil
		}
		marker = out.NextMarker
	}
}

func (a *app) createKeyCommand() *cobra.Command {
	var spec, usage, desc, alias string
	var tags []string
	c := &cobra.Command{
		Use:   "create-key [--spec SYMMETRIC_DEFAULT] [--alias alias/NAME]",
		Short: "Create a key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			in := kms.CreateKeyInput{Description: desc, KeySpec: kms.KeySpec(spec), KeyUsage: kms.KeyUsage(usage)}
			if in.KeyUsage == "" {
				in.KeyUsage = defaultUsage(in.KeySpec)
			}
			for _, t := range tags {
				k, v, _ := strings.Cut(t, "=")
				in.Tags = append(in.Tags, kms.Tag{TagKey: k, TagValue: v})
			}
			if alias != "" && !strings.HasPrefix(alias, "alias/") {
				return usagef("--alias takes alias/NAME")
			}
			m, err := r.CreateKey(ctx, in)
			if err != nil {
				return err
			}
			var aliases []string
			if alias != "" {
				if err := r.CreateAlias(ctx, alias, m.KeyID); err != nil {
					return fmt.Errorf("key %s was created, but its alias was not: %w", m.KeyID, err)
				}
				aliases = []string{alias}
			}
			row := rowOf(m, aliases)
			return a.print(row, func(w io.Writer) { printKey(w, row) })
		},
	}
	f := c.Flags()
	f.StringVar(&spec, "spec", "SYMMETRIC_DEFAULT", "the key spec: SYMMETRIC_DEFAULT, RSA_2048|3072|4096, ECC_NIST_P256|P384|P521, ECC_SECG_P256K1, HMAC_224|256|384|512, ...")
	f.StringVar(&usage, "usage", "", "ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC or KEY_AGREEMENT (default: the spec's usual one)")
	f.StringVar(&desc, "description", "", "a description")
	f.StringVar(&alias, "alias", "", "an alias for the key, alias/NAME")
	f.StringArrayVar(&tags, "tag", nil, "a tag k=v (repeatable)")
	return c
}

// defaultUsage is the usage a spec is usually made for.
func defaultUsage(spec kms.KeySpec) kms.KeyUsage {
	s := string(spec)
	switch {
	case strings.HasPrefix(s, "HMAC_"):
		return kms.GenerateVerifyMac
	case strings.HasPrefix(s, "ECC_"):
		return kms.SignVerify
	}
	return kms.EncryptDecrypt
}

func printKey(w io.Writer, k keyRow) {
	fmt.Fprintf(w, "KeyID        %s\nARN          %s\n", k.KeyID, k.Arn)
	if len(k.Aliases) > 0 {
		fmt.Fprintf(w, "Aliases      %s\n", strings.Join(k.Aliases, ", "))
	}
	fmt.Fprintf(w, "Spec         %s\nUsage        %s\nOrigin       %s\nState        %s\n", k.Spec, k.Usage, k.Origin, k.State)
	if k.Deletion != "" {
		fmt.Fprintf(w, "Deletion     %s\n", k.Deletion)
	}
	fmt.Fprintf(w, "Versions     %d (primary %d)\nCreated      %s\n", k.Versions, k.Primary, k.Created.Format(time.RFC3339))
	if k.Description != "" {
		fmt.Fprintf(w, "Description  %s\n", k.Description)
	}
}

func (a *app) listCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			rows := []keyRow{}
			marker := ""
			for {
				out, err := r.ListKeys(ctx, kms.ListKeysInput{Limit: 1000, Marker: marker})
				if err != nil {
					return err
				}
				for _, k := range out.Keys {
					m, err := r.DescribeKey(ctx, k.KeyID)
					if err != nil {
						return err
					}
					as, err := aliasesOf(ctx, r, k.KeyID)
					if err != nil {
						return err
					}
					rows = append(rows, rowOf(m, as))
				}
				if !out.Truncated {
					break
				}
				marker = out.NextMarker
			}
			return a.print(rows, func(w io.Writer) {
				var t [][]string
				for _, k := range rows {
					t = append(t, []string{k.KeyID, strings.Join(k.Aliases, ","), k.Spec, k.State, strconv.Itoa(k.Versions), k.Created.Format(time.DateOnly)})
				}
				table(w, []string{"KEY ID", "ALIASES", "SPEC", "STATE", "VERSIONS", "CREATED"}, t)
			})
		},
	}
}

func (a *app) describeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "describe KEY",
		Short: "Show a key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			m, err := r.DescribeKey(ctx, args[0])
			if err != nil {
				return err
			}
			as, err := aliasesOf(ctx, r, m.KeyID)
			if err != nil {
				return err
			}
			row := rowOf(m, as)
			return a.print(row, func(w io.Writer) { printKey(w, row) })
		},
	}
}

func (a *app) aliasCommand() *cobra.Command {
	c := &cobra.Command{Use: "alias", Short: "Create, point, delete and list aliases"}
	c.AddCommand(
		&cobra.Command{
			Use: "create alias/NAME KEY", Short: "Create an alias for a key", Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				r, ctx, err := a.open(cmd.Context(), false)
				if err != nil {
					return err
				}
				return r.CreateAlias(ctx, args[0], args[1])
			},
		},
		&cobra.Command{
			Use: "update alias/NAME KEY", Short: "Point an alias at another key", Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				r, ctx, err := a.open(cmd.Context(), false)
				if err != nil {
					return err
				}
				return r.UpdateAlias(ctx, args[0], args[1])
			},
		},
		&cobra.Command{
			Use: "delete alias/NAME", Short: "Delete an alias (not its key)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				r, ctx, err := a.open(cmd.Context(), false)
				if err != nil {
					return err
				}
				return r.DeleteAlias(ctx, args[0])
			},
		},
		&cobra.Command{
			Use: "list", Short: "List the aliases", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				r, ctx, err := a.open(cmd.Context(), false)
				if err != nil {
					return err
				}
				out, err := r.ListAliases(ctx, kms.ListAliasesInput{Limit: 100})
				if err != nil {
					return err
				}
				type row struct {
					Alias string `json:"alias"`
					KeyID string `json:"key_id"`
				}
				rows := []row{}
				for _, al := range out.Aliases {
					rows = append(rows, row{al.AliasName, al.TargetKeyID})
				}
				return a.print(rows, func(w io.Writer) {
					var t [][]string
					for _, r := range rows {
						t = append(t, []string{r.Alias, r.KeyID})
					}
					table(w, []string{"ALIAS", "KEY ID"}, t)
				})
			},
		},
	)
	return c
}

// stateCommand is a command that takes KEY and changes the key.
func (a *app) stateCommand(name, short string, do func(context.Context, *kms.KeyRing, string) error) *cobra.Command {
	return &cobra.Command{
		Use: name + " KEY", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			return do(ctx, r, args[0])
		},
	}
}

func (a *app) scheduleDeletionCommand() *cobra.Command {
	var days int
	c := &cobra.Command{
		Use:   "schedule-deletion KEY [--days 30]",
		Short: "Schedule a key's deletion in 7 to 30 days; until then, cancel-deletion undoes it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			m, err := r.ScheduleKeyDeletion(ctx, args[0], days)
			if err != nil {
				return err
			}
			return a.print(map[string]string{"key_id": m.KeyID, "deletion_date": m.DeletionDate.Format(time.RFC3339)}, func(w io.Writer) {
				fmt.Fprintf(w, "key %s will be deleted on %s\n", m.KeyID, m.DeletionDate.Format(time.DateOnly))
			})
		},
	}
	c.Flags().IntVar(&days, "days", 30, "the waiting period, 7 to 30 days")
	return c
}

func (a *app) rotateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate KEY",
		Short: "Rotate a key now: a new version encrypts from now on, the old ones still decrypt",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			v, err := r.RotateKeyOnDemand(ctx, args[0])
			if err != nil {
				return err
			}
			return a.print(map[string]any{"key": args[0], "version": v}, func(w io.Writer) {
				fmt.Fprintf(w, "rotated %s to version %d\n", args[0], v)
			})
		},
	}
}

func (a *app) rotationCommand() *cobra.Command {
	c := &cobra.Command{Use: "rotation", Short: "Automatic rotation: enable, disable, status, history"}
	var period int
	enable := &cobra.Command{
		Use: "enable KEY [--period-days 365]", Short: "Rotate the key automatically (due rotations run with any command, or pocketkms run-due)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			return r.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: args[0], RotationPeriodInDays: period})
		},
	}
	enable.Flags().IntVar(&period, "period-days", 365, "days between rotations, 90 to 2560")
	status := &cobra.Command{
		Use: "status KEY", Short: "Show whether and when the key rotates", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			s, err := r.GetKeyRotationStatus(ctx, args[0])
			if err != nil {
				return err
			}
			res := map[string]any{"key_arn": s.KeyID, "enabled": s.KeyRotationEnabled}
			if s.KeyRotationEnabled {
				res["period_days"], res["next_rotation"] = s.RotationPeriodInDays, s.NextRotationDate
			}
			if !s.OnDemandRotationStartDate.IsZero() {
				res["last_on_demand_rotation"] = s.OnDemandRotationStartDate
			}
			return a.print(res, func(w io.Writer) {
				if !s.KeyRotationEnabled {
					fmt.Fprintln(w, "automatic rotation: off")
					return
				}
				fmt.Fprintf(w, "automatic rotation: every %d days, next on %s\n", s.RotationPeriodInDays, s.NextRotationDate.Format(time.DateOnly))
			})
		},
	}
	history := &cobra.Command{
		Use: "history KEY", Short: "List the key's rotations", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			out, err := r.ListKeyRotations(ctx, kms.ListKeyRotationsInput{KeyID: args[0], Limit: 1000})
			if err != nil {
				return err
			}
			type rotation struct {
				Version uint32    `json:"version"`
				Date    time.Time `json:"date"`
				Type    string    `json:"type"`
			}
			rows := []rotation{}
			for _, rot := range out.Rotations {
				rows = append(rows, rotation{rot.KeyVersion, rot.RotationDate, string(rot.RotationType)})
			}
			return a.print(rows, func(w io.Writer) {
				var t [][]string
				for _, rot := range out.Rotations {
					t = append(t, []string{strconv.Itoa(int(rot.KeyVersion)), rot.RotationDate.Format(time.RFC3339), string(rot.RotationType)})
				}
				table(w, []string{"VERSION", "DATE", "TYPE"}, t)
			})
		},
	}
	c.AddCommand(enable, a.stateCommand("disable", "Stop rotating the key automatically", func(ctx context.Context, r *kms.KeyRing, id string) error {
		return r.DisableKeyRotation(ctx, id)
	}), status, history)
	return c
}
