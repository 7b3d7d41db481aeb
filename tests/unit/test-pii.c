/*
 * tests/unit/test-pii.c: the pure parts of pii-check (issue 21): which
 * column names look personal (pg/pii.c dd_pg_pii_name_kind) and the mask
 * lines it suggests (workflow/pii.c), which profiles.ini must read back as
 * the same column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "pg/pg.h"
#include "workflow/pii.h"

#define KIND(table, column, cat) dd_pg_pii_name_kind(table, column, cat)

static void
names_that_say_what_they_hold(void **state)
{
	(void)state;
	assert_int_equal(DD_PG_PII_EMAIL, KIND("orders", "email", 'S'));
	assert_int_equal(DD_PG_PII_EMAIL, KIND("orders", "e_mail", 'S'));
	assert_int_equal(DD_PG_PII_EMAIL, KIND("orders", "mail", 'S'));
	assert_int_equal(DD_PG_PII_EMAIL, KIND("orders", "billingEmail", 'S'));
	assert_int_equal(DD_PG_PII_EMAIL, KIND("orders", "useremail", 'S'));
	assert_int_equal(DD_PG_PII_EMAIL, KIND("orders", "email_address", 'S')); /* not an address */
	assert_int_equal(DD_PG_PII_EMAIL, KIND("orders", "emails", 'A'));
	assert_int_equal(DD_PG_PII_PHONE, KIND("orders", "phone", 'S'));
	assert_int_equal(DD_PG_PII_PHONE, KIND("orders", "mobile", 'S'));
	assert_int_equal(DD_PG_PII_PHONE, KIND("orders", "tel", 'S'));
	assert_int_equal(DD_PG_PII_PHONE, KIND("orders", "fax", 'S'));
	assert_int_equal(DD_PG_PII_PHONE, KIND("orders", "telephone", 'S'));
	assert_int_equal(DD_PG_PII_PHONE, KIND("orders", "phone_number", 'N'));
	assert_int_equal(DD_PG_PII_NAME, KIND("orders", "first_name", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("orders", "lastName", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("orders", "FULLNAME", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("orders", "surname", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("orders", "given_name", 'S'));
	assert_int_equal(DD_PG_PII_ADDRESS, KIND("orders", "street", 'S'));
	assert_int_equal(DD_PG_PII_ADDRESS, KIND("orders", "address1", 'S'));
	assert_int_equal(DD_PG_PII_ADDRESS, KIND("orders", "billing_address", 'S'));
	assert_int_equal(DD_PG_PII_ADDRESS, KIND("orders", "city", 'S'));
	assert_int_equal(DD_PG_PII_ADDRESS, KIND("orders", "zip", 'S'));
	assert_int_equal(DD_PG_PII_ADDRESS, KIND("orders", "postal_code", 'S'));
	assert_int_equal(DD_PG_PII_ADDRESS, KIND("orders", "postcode", 'S'));
	assert_int_equal(DD_PG_PII_BIRTH, KIND("orders", "birth_date", 'D'));
	assert_int_equal(DD_PG_PII_BIRTH, KIND("orders", "date_of_birth", 'D'));
	assert_int_equal(DD_PG_PII_BIRTH, KIND("orders", "dob", 'D'));
	assert_int_equal(DD_PG_PII_BIRTH, KIND("orders", "birthday", 'S'));
	assert_int_equal(DD_PG_PII_IP, KIND("orders", "ip", 'S'));
	assert_int_equal(DD_PG_PII_IP, KIND("orders", "ip_address", 'S')); /* not an address */
	assert_int_equal(DD_PG_PII_IP, KIND("orders", "last_login_ip", 'S'));
	assert_int_equal(DD_PG_PII_IP, KIND("orders", "IPAddress", 'S'));
	assert_int_equal(DD_PG_PII_NATIONAL_ID, KIND("orders", "ssn", 'S'));
	assert_int_equal(DD_PG_PII_NATIONAL_ID, KIND("orders", "social_security_number", 'S'));
	assert_int_equal(DD_PG_PII_NATIONAL_ID, KIND("orders", "national_id", 'S'));
	assert_int_equal(DD_PG_PII_NATIONAL_ID, KIND("orders", "passport_no", 'S'));
	assert_int_equal(DD_PG_PII_NATIONAL_ID, KIND("orders", "tax_id", 'S'));
	assert_int_equal(DD_PG_PII_BANK, KIND("orders", "iban", 'S'));
	assert_int_equal(DD_PG_PII_CARD, KIND("orders", "credit_card", 'S'));
	assert_int_equal(DD_PG_PII_CARD, KIND("orders", "card_number", 'N'));
}

static void
inet_and_cidr_hold_ip_addresses_whatever_the_name(void **state)
{
	(void)state;
	assert_int_equal(DD_PG_PII_IP, KIND("hits", "origin", 'I'));
	assert_int_equal(DD_PG_PII_IP, KIND("hits", "email", 'I'));
}

static void
a_name_counts_only_for_a_type_that_can_hold_it(void **state)
{
	(void)state;
	assert_int_equal(-1, KIND("users", "email_verified", 'B'));
	assert_int_equal(-1, KIND("users", "mail_sent_at", 'D'));
	assert_int_equal(-1, KIND("users", "email_count", 'N'));
	assert_int_equal(-1, KIND("users", "city_id", 'D'));
	assert_int_equal(-1, KIND("users", "first_name", 'N'));
	assert_int_equal(-1, KIND("users", "ip", 'N'));
	assert_int_equal(-1, KIND("users", "email", 0));
}

static void
words_inside_other_words_do_not_count(void **state)
{
	(void)state;
	assert_int_equal(-1, KIND("t", "hotel", 'S'));
	assert_int_equal(-1, KIND("t", "telemetry", 'S'));
	assert_int_equal(-1, KIND("t", "mailbox_id", 'S'));
	assert_int_equal(-1, KIND("t", "skip", 'S'));
	assert_int_equal(-1, KIND("t", "zipper", 'S'));
	assert_int_equal(-1, KIND("t", "syntax_identifier", 'S'));
	assert_int_equal(-1, KIND("t", "filename", 'S'));
	assert_int_equal(-1, KIND("t", "username", 'S'));
	assert_int_equal(-1, KIND("t", "description", 'S'));
	assert_int_equal(-1, KIND("t", "mac_address", 'S')); /* a device's address */
	assert_int_equal(-1, KIND("t", "", 'S'));
	assert_int_equal(-1, KIND("t", "___", 'S'));
}

static void
name_is_personal_only_in_a_table_of_people(void **state)
{
	(void)state;
	assert_int_equal(DD_PG_PII_NAME, KIND("users", "name", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("customers", "name", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("app_users", "display_name", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("UserProfiles", "name", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("people", "name", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("accounts", "name", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("employee", "name", 'S'));
	assert_int_equal(-1, KIND("products", "name", 'S'));
	assert_int_equal(-1, KIND("user_roles", "name", 'S')); /* roles, not users */
	assert_int_equal(-1, KIND("usersettings", "name", 'S'));
	assert_int_equal(-1, KIND("users", "name_id", 'N'));
}

static void
a_persons_name_is_one_in_any_table(void **state)
{
	(void)state;
	assert_int_equal(DD_PG_PII_NAME, KIND("orders", "customer_name", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("orders", "contactName", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("orders", "recipient_name", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("payments", "card_holder_name", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("orders", "shipping_name", 'S'));
	assert_int_equal(DD_PG_PII_NAME, KIND("tickets", "user_name", 'S'));
	assert_int_equal(-1, KIND("orders", "product_name", 'S'));
	assert_int_equal(-1, KIND("orders", "customer_name", 'N'));
	assert_int_equal(-1, KIND("orders", "customer_id", 'S'));
}

static void
long_and_odd_names_are_safe(void **state)
{
	char big[4096];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(-1, KIND(big, big, 'S'));
	for (size_t i = 0; i + 1 < sizeof(big); i += 2)
		big[i] = '_';
	assert_int_equal(-1, KIND(big, big, 'S'));
	memcpy(big + 8, "_email", 7);
	assert_int_equal(DD_PG_PII_EMAIL, KIND("t", big, 'S'));
	assert_int_equal(DD_PG_PII_EMAIL, KIND("t", "\xc3\xa9_email", 'S'));
	assert_int_equal(DD_PG_PII_PHONE, KIND("t", "t\xc3\xa9l\xc3\xa9phone", 'S'));
}

/* The suggested line parses back (config/mask.c) as a rule on the same column. */
static void
check_suggestion(const char *schema, const char *table, const char *column, enum dd_pg_pii_kind kind, int notnull,
		 const char *want)
{
	struct dd_pg_pii_column c = { (char *)schema, (char *)table, (char *)column, (char *)"text", notnull, kind,
				      DD_PG_PII_BY_NAME, 0, 0, (char *)"its name", NULL, 0, NULL };
	struct dd_mask_rule r;
	const char *why = NULL;
	char *line = dd_workflow_pii_suggest(&c);

	assert_string_equal(want, line);
	assert_int_equal(0, strncmp(line, "mask = ", 7));
	assert_int_equal(0, dd_mask_rule_parse(line + 7, &r, &why));
	assert_string_equal(schema, r.schema);
	assert_string_equal(table, r.table);
	assert_string_equal(column, r.column);
	dd_mask_rule_clear(&r);
	free(line);
}

static void
suggested_lines_paste_as_rules_on_the_same_column(void **state)
{
	(void)state;
	check_suggestion("public", "users", "email", DD_PG_PII_EMAIL, 0, "mask = public.users.email fake_email");
	check_suggestion("public", "users", "phone", DD_PG_PII_PHONE, 0, "mask = public.users.phone fake_phone");
	check_suggestion("crm", "people", "full_name", DD_PG_PII_NAME, 1, "mask = crm.people.full_name fake_name");
	check_suggestion("public", "users", "ssn", DD_PG_PII_NATIONAL_ID, 0, "mask = public.users.ssn hash");
	check_suggestion("public", "users", "street", DD_PG_PII_ADDRESS, 0, "mask = public.users.street redact");
	check_suggestion("public", "users", "dob", DD_PG_PII_BIRTH, 0, "mask = public.users.dob null");
	check_suggestion("public", "users", "dob", DD_PG_PII_BIRTH, 1, "mask = public.users.dob redact");
	check_suggestion("public", "users", "last_ip", DD_PG_PII_IP, 0, "mask = public.users.last_ip null");
	check_suggestion("Sales", "Users", "lastName", DD_PG_PII_NAME, 0,
			 "mask = \"Sales\".\"Users\".\"lastName\" fake_name");
	check_suggestion("public", "we\"ird", "e mail", DD_PG_PII_EMAIL, 0,
			 "mask = public.\"we\"\"ird\".\"e mail\" fake_email");
	check_suggestion("public", "t$1", "_x9", DD_PG_PII_CARD, 0, "mask = public.t$1._x9 hash");
}

/* A partition's line names its top-most partitioned table: one line covers every partition. */
static void
a_partitions_line_names_its_top_most_partitioned_table(void **state)
{
	struct dd_pg_pii_table anc[] = { { (char *)"public", (char *)"visits_2" }, { (char *)"Web", (char *)"visits" } };
	struct dd_pg_pii_column c = { (char *)"public", (char *)"visits_2a", (char *)"email", (char *)"text", 0,
				      DD_PG_PII_EMAIL, DD_PG_PII_BY_NAME, 0, 0, (char *)"its name", anc, 2, &anc[1] };
	char *line;

	(void)state;
	line = dd_workflow_pii_suggest(&c);
	assert_string_equal("mask = \"Web\".visits.email fake_email", line);
	free(line);
}

/* A text or document that holds e-mail addresses somewhere is not one: no fake_email over a whole document. */
static void
a_document_holding_addresses_is_nulled_or_redacted(void **state)
{
	struct dd_pg_pii_column c = { (char *)"public", (char *)"tickets", (char *)"meta", (char *)"jsonb", 0,
				      DD_PG_PII_EMAIL, DD_PG_PII_BY_CONTENTS, 80, 80, (char *)"100%", NULL, 0, NULL };
	char *line;

	(void)state;
	line = dd_workflow_pii_suggest(&c);
	assert_string_equal("mask = public.tickets.meta null", line);
	free(line);
	c.notnull = 1;
	line = dd_workflow_pii_suggest(&c);
	assert_string_equal("mask = public.tickets.meta redact", line);
	free(line);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_that_say_what_they_hold),
		cmocka_unit_test(inet_and_cidr_hold_ip_addresses_whatever_the_name),
		cmocka_unit_test(a_name_counts_only_for_a_type_that_can_hold_it),
		cmocka_unit_test(words_inside_other_words_do_not_count),
		cmocka_unit_test(name_is_personal_only_in_a_table_of_people),
		cmocka_unit_test(a_persons_name_is_one_in_any_table),
		cmocka_unit_test(long_and_odd_names_are_safe),
		cmocka_unit_test(suggested_lines_paste_as_rules_on_the_same_column),
		cmocka_unit_test(a_partitions_line_names_its_top_most_partitioned_table),
		cmocka_unit_test(a_document_holding_addresses_is_nulled_or_redacted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
