/*
 * cmd_completion.c - `pocketctl completion bash|zsh` (hidden): print a
 * shell completion script made from the command table and the schema, so
 * that completion never lags behind the commands. `make install` runs it
 * into the shells' completion directories.
 *
 * Everything comes from the table's existing columns: the command names;
 * each command's options, what they take and its operands, read from its
 * usage line ("get KIND [NAME] [-o table|json|yaml|record]"); the -o
 * formats of a CLI_OUTPUT row; and the kinds of the schema for a KIND
 * operand. Placeholders decide the completion: PATH and FILE complete
 * files, DIR directories, KIND the kinds, COMMAND the commands, a
 * lower-case word (ledger's "verify") itself; anything else completes
 * nothing.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define MAX_TOKENS 128
#define MAX_OPTS 48
#define MAX_OPERANDS 8
#define WORD_MAX 64
#define WORDS_MAX 256

enum act { ACT_NONE, ACT_FILES, ACT_DIRS, ACT_KINDS, ACT_COMMANDS,
	   ACT_WORDS };

/* An option or an operand of a command, as its usage line says. */
struct carg {
	char name[WORD_MAX];         /* option: "--root"; operand: "KIND" */
	char value[WORD_MAX];        /* option: its placeholder, "" = none */
	enum act act;                /* what its value (operand: it) is */
	char words[WORDS_MAX];       /* ACT_WORDS: space-separated */
	bool repeat;                 /* "PATH...", "[...]..." */
	bool optional;               /* operand in [brackets] */
};

struct ccmd {
	const struct cli_command *c;
	struct carg opts[MAX_OPTS];
	size_t nopts;
	struct carg operands[MAX_OPERANDS];
	size_t noperands;
};

/* The global options (main.c's take_globals()), for every command. */
static const struct carg globals[] = {
	{ "--data", "DIR", ACT_DIRS, "", false, false },
	{ "--server", "URL", ACT_NONE, "", false, false },
	{ "--token", "TOKEN", ACT_NONE, "", false, false },
	{ "--offline", "", ACT_NONE, "", false, false },
	{ "--help", "", ACT_NONE, "", false, false },
};

#define NGLOBALS (sizeof(globals) / sizeof(globals[0]))

static bool is_global(const char *name)
{
	size_t i;

	for (i = 0; i < NGLOBALS; i++)
		if (!strcmp(globals[i].name, name))
			return true;
	return !strcmp(name, "-h");
}

/* A usage token without its brackets and "...": "[KIND...]" -> "KIND". */
static void clean(const char *raw, char *out, size_t n, bool *repeat)
{
	size_t len;
	bool again = true;

	*repeat = false;
	while (*raw == '[' || *raw == '(')
		raw++;
	snprintf(out, n, "%s", raw);
	while (again) {
		again = false;
		len = strlen(out);
		if (len >= 3 && !strcmp(out + len - 3, "...")) {
			out[len - 3] = '\0';
			*repeat = again = true;
		} else if (len && (out[len - 1] == ']' || out[len - 1] == ')')) {
			out[len - 1] = '\0';
			again = true;
		}
	}
}

/* A literal word of the usage line ("verify"), not a placeholder. */
static bool is_literal(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '-'))
			return false;
	return true;
}

static void set_act(struct carg *a, const char *placeholder, bool operand)
{
	if (!strcmp(placeholder, "PATH") || !strcmp(placeholder, "FILE"))
		a->act = ACT_FILES;
	else if (!strcmp(placeholder, "DIR"))
		a->act = ACT_DIRS;
	else if (!strcmp(placeholder, "KIND") ||
		 !strncmp(placeholder, "KIND[,", 6))   /* get's KIND[,KIND...]|all */
		a->act = ACT_KINDS;
	else if (operand && !strcmp(placeholder, "COMMAND"))
		a->act = ACT_COMMANDS;
	else if (operand && is_literal(placeholder)) {
		a->act = ACT_WORDS;
		snprintf(a->words, sizeof(a->words), "%s", placeholder);
	} else
		a->act = ACT_NONE;
}

/* The -o formats of a row as words: "text=table|json" -> "text table json". */
static void format_words(const char *formats, char *out, size_t n)
{
	size_t i;

	snprintf(out, n, "%s", formats ? formats : "");
	for (i = 0; out[i]; i++)
		if (out[i] == '|' || out[i] == '=')
			out[i] = ' ';
}

static struct carg *add_opt(struct ccmd *cc, const char *name)
{
	struct carg *a;
	size_t i;

	if (is_global(name))
		return NULL;
	for (i = 0; i < cc->nopts; i++)
		if (!strcmp(cc->opts[i].name, name))
			return NULL;
	if (cc->nopts == MAX_OPTS)
		return NULL;
	a = &cc->opts[cc->nopts++];
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", name);
	return a;
}

/* -o and --output of a CLI_OUTPUT row, taking its formats. */
static void add_output(struct ccmd *cc)
{
	static const char *const names[] = { "-o", "--output" };
	struct carg *a;
	size_t i;

	for (i = 0; i < 2; i++) {
		a = add_opt(cc, names[i]);
		if (!a)
			continue;
		snprintf(a->value, sizeof(a->value), "FORMAT");
		a->act = ACT_WORDS;
		format_words(cc->c->formats, a->words, sizeof(a->words));
	}
}

/* Read c's usage line into cc. */
static void parse_usage(const struct cli_command *c, struct ccmd *cc)
{
	char line[2048], word[WORD_MAX], *tok[MAX_TOKENS], *save = NULL, *t;
	size_t n = 0, i;
	bool repeat, vrepeat;
	struct carg *a;

	memset(cc, 0, sizeof(*cc));
	cc->c = c;
	snprintf(line, sizeof(line), "%s", c->usage);
	for (t = strtok_r(line, " ", &save); t && n < MAX_TOKENS;
	     t = strtok_r(NULL, " ", &save))
		tok[n++] = t;
	for (i = 1; i < n; i++) {            /* tok[0] is the command */
		clean(tok[i], word, sizeof(word), &repeat);
		if (!*word || !strcmp(word, "|"))
			continue;
		if (word[0] == '-') {
			const char *raw = tok[i];
			size_t len = strlen(raw);
			bool closed = len && (raw[len - 1] == ']' ||
					      (len > 3 && raw[len - 4] == ']'));
			bool value = !closed && i + 1 < n &&
				     tok[i + 1][0] != '[' && tok[i + 1][0] != '-';

			a = add_opt(cc, word);
			if (!value) {
				if (a)
					a->repeat = repeat;
				continue;
			}
			clean(tok[++i], a ? a->value : word,
			      a ? sizeof(a->value) : sizeof(word), &vrepeat);
			if (!a)
				continue;
			a->repeat = vrepeat;
			set_act(a, a->value, false);
			if (!strcmp(a->name, "-o") && (c->flags & CLI_OUTPUT)) {
				a->act = ACT_WORDS;
				format_words(c->formats, a->words,
					     sizeof(a->words));
			}
			continue;
		}
		if (cc->noperands == MAX_OPERANDS)
			continue;
		a = &cc->operands[cc->noperands++];
		snprintf(a->name, sizeof(a->name), "%s", word);
		a->repeat = repeat;
		a->optional = tok[i][0] == '[';
		set_act(a, word, true);
	}
	if (c->flags & CLI_OUTPUT)
		add_output(cc);
}

/* Every kind of the schema, as written and in lower case, space-separated. */
static void print_kinds(const struct schema *schema)
{
	char kind[WORD_MAX];
	size_t i;

	for (i = 0; i < schema->ncollections; i++) {
		cli_kind_lower(&schema->collections[i], kind, sizeof(kind));
		printf("%s%s %s", i ? " " : "", schema->collections[i].kind,
		       kind);
	}
}

/* ---- bash ---------------------------------------------------------------- */

static const char *bash_act(const struct carg *a, char *buf, size_t n)
{
	switch (a->act) {
	case ACT_FILES: return "files";
	case ACT_DIRS: return "dirs";
	case ACT_KINDS: return "kinds";
	case ACT_COMMANDS: return "commands";
	case ACT_WORDS:
		snprintf(buf, n, "words:%s", a->words);
		return buf;
	default: return "none";
	}
}

static void print_bash(const struct cli *cli, const struct ccmd *cc,
		       size_t ncc)
{
	char buf[WORDS_MAX + 8];
	size_t i, k;

	printf("# bash completion for pocketctl, generated by `pocketctl completion bash`\n"
	       "# from its command table and schema (make install puts it in\n"
	       "# share/bash-completion/completions/pocketctl).\n\n");
	printf("_pocketctl_commands='");
	for (i = 0; i < ncc; i++)
		if (!(cc[i].c->flags & CLI_HIDDEN))
			printf("%s%s", i ? " " : "", cc[i].c->name);
	printf("'\n_pocketctl_kinds='");
	print_kinds(cli->schema);
	printf("'\n_pocketctl_globals='");
	for (i = 0; i < NGLOBALS; i++)
		printf("%s%s", i ? " " : "", globals[i].name);
	printf("'\n\n# _pocketctl_value CMD OPTION: what OPTION of CMD takes (fails: no value).\n"
	       "_pocketctl_value() {\n\tcase \"$1 $2\" in\n");
	for (i = 0; i < ncc; i++)
		for (k = 0; k < cc[i].nopts; k++)
			if (cc[i].opts[k].value[0])
				printf("\t'%s %s') echo '%s' ;;\n",
				       cc[i].c->name, cc[i].opts[k].name,
				       bash_act(&cc[i].opts[k], buf,
						sizeof(buf)));
	for (i = 0; i < NGLOBALS; i++)
		if (globals[i].value[0])
			printf("\t*' %s') echo '%s' ;;\n", globals[i].name,
			       bash_act(&globals[i], buf, sizeof(buf)));
	printf("\t*) return 1 ;;\n\tesac\n}\n\n"
	       "# _pocketctl_opts CMD: the options of CMD besides the global ones.\n"
	       "_pocketctl_opts() {\n\tcase $1 in\n");
	for (i = 0; i < ncc; i++) {
		printf("\t%s) echo '", cc[i].c->name);
		for (k = 0; k < cc[i].nopts; k++)
			printf("%s%s", k ? " " : "", cc[i].opts[k].name);
		printf("' ;;\n");
	}
	printf("\tesac\n}\n\n"
	       "# _pocketctl_operand CMD N: what the Nth operand of CMD is (fails: none).\n"
	       "_pocketctl_operand() {\n\tcase \"$1 $2\" in\n");
	for (i = 0; i < ncc; i++)
		for (k = 0; k < cc[i].noperands; k++) {
			const struct carg *a = &cc[i].operands[k];

			if (a->repeat)
				printf("\t'%s '*) echo '%s' ;;\n", cc[i].c->name,
				       bash_act(a, buf, sizeof(buf)));
			else
				printf("\t'%s %zu') echo '%s' ;;\n",
				       cc[i].c->name, k + 1,
				       bash_act(a, buf, sizeof(buf)));
			if (a->repeat)
				break;
		}
	printf("\t*) return 1 ;;\n\tesac\n}\n\n");
	printf("# _pocketctl_reply ACTION WORD: fill COMPREPLY.\n"
	       "_pocketctl_reply() {\n"
	       "\tlocal IFS=$' \\t\\n'\n"
	       "\tcase $1 in\n"
	       "\tfiles) IFS=$'\\n'; COMPREPLY=($(compgen -f -- \"$2\")) ;;\n"
	       "\tdirs) IFS=$'\\n'; COMPREPLY=($(compgen -d -- \"$2\")) ;;\n"
	       "\tkinds) COMPREPLY=($(compgen -W \"$_pocketctl_kinds\" -- \"$2\")) ;;\n"
	       "\tcommands) COMPREPLY=($(compgen -W \"$_pocketctl_commands\" -- \"$2\")) ;;\n"
	       "\twords:*) COMPREPLY=($(compgen -W \"${1#words:}\" -- \"$2\")) ;;\n"
	       "\t*) COMPREPLY=() ;;\n"
	       "\tesac\n}\n\n"
	       "_pocketctl() {\n"
	       "\tlocal cur=${COMP_WORDS[COMP_CWORD]} cmd= w act i n=0\n"
	       "\tCOMPREPLY=()\n"
	       "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
	       "\t\tw=${COMP_WORDS[i]}\n"
	       "\t\tif [[ $w == -* ]]; then\n"
	       "\t\t\tif act=$(_pocketctl_value \"${cmd:-.}\" \"$w\"); then\n"
	       "\t\t\t\t# --opt=VALUE: bash splits it at the =\n"
	       "\t\t\t\t[[ ${COMP_WORDS[i + 1]} == = ]] && i=$((i + 1))\n"
	       "\t\t\t\ti=$((i + 1))\n"
	       "\t\t\t\tif ((i == COMP_CWORD)); then\n"
	       "\t\t\t\t\t_pocketctl_reply \"$act\" \"$cur\"\n"
	       "\t\t\t\t\treturn 0\n"
	       "\t\t\t\tfi\n"
	       "\t\t\tfi\n"
	       "\t\t\tcontinue\n"
	       "\t\tfi\n"
	       "\t\tif [[ -z $cmd ]]; then cmd=$w; else n=$((n + 1)); fi\n"
	       "\tdone\n"
	       "\tif [[ $cur == -* ]]; then\n"
	       "\t\t_pocketctl_reply \"words:$(_pocketctl_opts \"$cmd\") $_pocketctl_globals\" \"$cur\"\n"
	       "\telif [[ -z $cmd ]]; then\n"
	       "\t\t_pocketctl_reply commands \"$cur\"\n"
	       "\telif act=$(_pocketctl_operand \"$cmd\" $((n + 1))); then\n"
	       "\t\t_pocketctl_reply \"$act\" \"$cur\"\n"
	       "\tfi\n"
	       "\treturn 0\n"
	       "}\n\n"
	       "complete -F _pocketctl pocketctl\n");
}

/* ---- zsh ----------------------------------------------------------------- */

/* s with ':' escaped for an _arguments message or a _describe entry. */
static void zsh_escaped(const char *s)
{
	for (; *s; s++) {
		if (*s == ':' || *s == '\\')
			putchar('\\');
		if (*s != '\'')
			putchar(*s);
	}
}

static void zsh_action(const struct carg *a)
{
	switch (a->act) {
	case ACT_FILES: printf("_files"); break;
	case ACT_DIRS: printf("_files -/"); break;
	case ACT_KINDS: printf("{compadd -a kinds}"); break;
	case ACT_COMMANDS: printf("{_describe command commands}"); break;
	case ACT_WORDS: printf("(%s)", a->words); break;
	default: printf(" "); break;
	}
}

/* One _arguments spec of option a: '*--rate-limit=:GROUP=N/SECONDS: '. */
static void zsh_opt(const struct carg *a)
{
	printf(" '%s%s", a->repeat ? "*" : "", a->name);
	if (a->value[0]) {
		printf("%s:", a->name[1] == '-' ? "=" : "+");
		zsh_escaped(a->value);
		putchar(':');
		zsh_action(a);
	}
	putchar('\'');
}

static void print_zsh(const struct cli *cli, const struct ccmd *cc,
		      size_t ncc)
{
	size_t i, k;

	printf("#compdef pocketctl\n"
	       "# zsh completion for pocketctl, generated by `pocketctl completion zsh`\n"
	       "# from its command table and schema (make install puts it in\n"
	       "# share/zsh/site-functions/_pocketctl).\n\n"
	       "_pocketctl() {\n"
	       "\tlocal curcontext=$curcontext state line ret=1\n"
	       "\tlocal -a commands kinds globals\n"
	       "\tcommands=(\n");
	for (i = 0; i < ncc; i++) {
		if (cc[i].c->flags & CLI_HIDDEN)
			continue;
		printf("\t\t'%s:", cc[i].c->name);
		zsh_escaped(cc[i].c->usage);
		printf("'\n");
	}
	printf("\t)\n\tkinds=(");
	print_kinds(cli->schema);
	printf(")\n\tglobals=(");
	for (i = 0; i < NGLOBALS; i++)
		zsh_opt(&globals[i]);
	printf(" '-h')\n"
	       "\t_arguments -C $globals '1:command:{_describe command commands}' \\\n"
	       "\t\t'*::argument:->args' && ret=0\n"
	       "\t[[ $state == args ]] || return ret\n"
	       "\tcurcontext=${curcontext%%:*:*}:pocketctl-$words[1]:\n"
	       "\tcase $words[1] in\n");
	for (i = 0; i < ncc; i++) {
		printf("\t%s)\n\t\t_arguments $globals", cc[i].c->name);
		for (k = 0; k < cc[i].nopts; k++)
			zsh_opt(&cc[i].opts[k]);
		for (k = 0; k < cc[i].noperands; k++) {
			const struct carg *a = &cc[i].operands[k];

			if (a->repeat)
				printf(" '*:");
			else
				printf(" '%zu:%s", k + 1, a->optional ? ":" : "");
			zsh_escaped(a->name);
			putchar(':');
			zsh_action(a);
			putchar('\'');
			if (a->repeat)
				break;
		}
		printf(" && ret=0\n\t\t;;\n");
	}
	printf("\tesac\n\treturn ret\n}\n\n_pocketctl \"$@\"\n");
}

int cmd_completion(struct cli *cli, int argc, char **argv)
{
	static struct ccmd cc[64];
	size_t i, n = 0;
	int first = cli_operands("completion", argc, argv);

	if (first < 0)
		return CLI_ERROR;
	if (argc - first != 1 || (strcmp(argv[first], "bash") &&
				  strcmp(argv[first], "zsh")))
		return cli_usage("completion", "give the shell: bash or zsh%s%s%s",
				 argc - first >= 1 ? ", not '" : "",
				 argc - first >= 1 ? argv[first] : "",
				 argc - first >= 1 ? "'" : "");
	for (i = 0; i < cli->ncommands && n < 64; i++)
		parse_usage(&cli->commands[i], &cc[n++]);
	if (!strcmp(argv[first], "bash"))
		print_bash(cli, cc, n);
	else
		print_zsh(cli, cc, n);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "pocketctl: cannot write the completion script to standard output\n");
		return CLI_ERROR;
	}
	return CLI_OK;
}
