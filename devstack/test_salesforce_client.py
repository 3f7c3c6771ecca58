#!/usr/bin/env python3
"""The Salesforce emulator as a real, maintained client library sees it: simple-salesforce (PyPI),
unchanged, drives OAuth, describe, the sObject Rows resources, upsert, query paging, Bulk API 2.0
ingest and query jobs, limits, the versions list, Salesforce's error shapes and an expired session.

The OAuth grants are driven by real clients too: simple-salesforce's own JWT bearer login (its
RS256 assertion, audience https://login.salesforce.com) and client credentials login (HTTP Basic),
and requests-oauthlib's refresh token grant.

Run by `devstack/tests/real_client.rs` (so by `make test`) against an emulator it starts; the
emulator's address, client id and secret come in SF_URL, SF_CLIENT_ID and SF_CLIENT_SECRET, the
JWT user and key file in SF_USERNAME and SF_JWT_KEY, the app's refresh token in SF_REFRESH_TOKEN.
simple-salesforce always speaks https, to the login hosts it knows; the session below hands
those requests to the emulator's plain-http listener, as a TLS-terminating proxy would, and
changes nothing else.
"""

import os
import unittest

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from requests_oauthlib import OAuth2Session
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

URL = os.environ["SF_URL"]
ORGANIZATION_ID = "00D5g00000EMUL8AAA"


class PlainHttp(HTTPAdapter):
    """Sends https://<emulator> requests to the emulator's http listener."""

    def send(self, request, **kwargs):
        request.url = request.url.replace("https://", "http://", 1)
        return super().send(request, **kwargs)


class ToEmulator(HTTPAdapter):
    """Sends requests for a Salesforce login host to the emulator."""

    def __init__(self, host):
        super().__init__()
        self.host = host

    def send(self, request, **kwargs):
        request.url = request.url.replace(self.host, URL, 1)
        return super().send(request, **kwargs)


LOGIN_HOSTS = ["https://login.salesforce.com", "https://emulator-dev-ed.my.salesforce.com"]


def emulator_session():
    """A session whose https requests to the login hosts and the instance reach the emulator."""
    session = requests.Session()
    session.mount(URL.replace("http://", "https://"), PlainHttp())
    for host in LOGIN_HOSTS:
        session.mount(host, ToEmulator(host))
    return session


def token():
    answer = requests.post(
        f"{URL}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": os.environ["SF_CLIENT_ID"],
            "client_secret": os.environ["SF_CLIENT_SECRET"],
        },
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def client(session_id=None):
    granted = token()
    session = requests.Session()
    session.mount(URL.replace("http://", "https://"), PlainHttp())
    return Salesforce(
        instance_url=granted["instance_url"],
        session_id=session_id or granted["access_token"],
        version="62.0",
        session=session,
    )


class RealClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sf = client()

    def test_token_names_the_org_the_outbound_messages_carry(self):
        granted = token()
        self.assertEqual(granted["token_type"], "Bearer")
        self.assertIn(f"/id/{ORGANIZATION_ID}/", granted["id"])

    def test_describe(self):
        fields = {f["name"]: f for f in self.sf.Account.describe()["fields"]}
        self.assertTrue(fields["Gainsight_Company_Id__c"]["externalId"])
        self.assertFalse(fields["Name"]["nillable"])

    def test_create_get_update_delete_one_record(self):
        created = self.sf.Account.create({"Name": "Contract Co"})
        self.assertTrue(created["success"])
        account_id = created["id"]
        self.assertTrue(account_id.startswith("001"))
        record = self.sf.Account.get(account_id)
        self.assertEqual(record["Name"], "Contract Co")
        self.assertEqual(record["attributes"]["type"], "Account")
        self.assertEqual(self.sf.Account.update(account_id, {"Phone": "+1 555 0100"}), 204)
        self.assertEqual(self.sf.Account.get(account_id)["Phone"], "+1 555 0100")
        self.assertEqual(self.sf.Account.delete(account_id), 204)
        with self.assertRaises(SalesforceResourceNotFound) as missing:
            self.sf.Account.get(account_id)
        self.assertEqual(missing.exception.content[0]["errorCode"], "NOT_FOUND")

    def test_upsert_one_record_on_an_external_id(self):
        key = "Gainsight_Company_Id__c/GS-CONTRACT-1"
        self.assertEqual(self.sf.Account.upsert(key, {"Name": "Upserted"}), 201)
        self.assertEqual(self.sf.Account.upsert(key, {"Name": "Upserted again"}), 200)
        found = self.sf.Account.get_by_custom_id("Gainsight_Company_Id__c", "GS-CONTRACT-1")
        self.assertEqual(found["Name"], "Upserted again")

    def test_query_all_follows_next_records_url(self):
        seeded = [{"LastName": f"Paged {i}"} for i in range(2_100)]
        requests.post(f"{URL}/__emulator/records/Contact", json=seeded, timeout=30).raise_for_status()
        first = self.sf.query("SELECT Id FROM Contact WHERE LastName LIKE 'Paged%'")
        self.assertFalse(first["done"])
        self.assertIn("nextRecordsUrl", first)
        everything = self.sf.query_all("SELECT Id FROM Contact WHERE LastName LIKE 'Paged%'")
        self.assertEqual(everything["totalSize"], 2_100)
        self.assertEqual(len(everything["records"]), 2_100)

    def test_limits_and_the_usage_header(self):
        limits = self.sf.limits()
        self.assertEqual(limits["DailyApiRequests"]["Max"], 15_000)
        self.sf.query("SELECT Id FROM Account LIMIT 1")
        usage = self.sf.api_usage["api-usage"]
        self.assertEqual(usage.total, 15_000)
        self.assertGreater(usage.used, 0)

    def test_versions_list(self):
        versions = self.sf.session.get(f"https://{self.sf.sf_instance}/services/data/", timeout=10)
        self.assertEqual(versions.status_code, 200)
        self.assertIn("62.0", [v["version"] for v in versions.json()])

    def test_errors_come_as_salesforce_json(self):
        with self.assertRaises(SalesforceMalformedRequest) as refused:
            self.sf.Account.create({"Industry": "Underwater Basket Weaving"})
        codes = {e["errorCode"] for e in refused.exception.content}
        self.assertTrue(codes & {"REQUIRED_FIELD_MISSING", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"}, codes)
        with self.assertRaises(SalesforceResourceNotFound) as unknown:
            self.sf.restful("no/such/resource")
        self.assertEqual(unknown.exception.content[0]["errorCode"], "NOT_FOUND")

    def test_bulk_2_upsert(self):
        records = [
            {"Name": f"Bulk {i}", "Gainsight_Company_Id__c": f"GS-BULK-{i}"} for i in range(300)
        ]
        records[7]["Industry"] = "Underwater Basket Weaving"
        jobs = self.sf.bulk2.Account.upsert(
            records=records, external_id_field="Gainsight_Company_Id__c", wait=0.1
        )
        self.assertEqual(jobs[0]["numberRecordsProcessed"], 300)
        self.assertEqual(jobs[0]["numberRecordsFailed"], 1)
        failed = self.sf.bulk2.Account.get_failed_records(jobs[0]["job_id"])
        self.assertIn("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", failed)
        self.assertIn("GS-BULK-7", failed)
        found = self.sf.Account.get_by_custom_id("Gainsight_Company_Id__c", "GS-BULK-299")
        self.assertEqual(found["Name"], "Bulk 299")

    def test_bulk_2_query_in_sets_by_locator(self):
        self.sf.bulk2.Account.upsert(
            records=[
                {"Name": f"Queried {i}", "Gainsight_Company_Id__c": f"GS-QUERY-{i}"}
                for i in range(250)
            ],
            external_id_field="Gainsight_Company_Id__c",
            wait=0.1,
        )
        sets = list(
            self.sf.bulk2.Account.query(
                "SELECT Id, Name, Gainsight_Company_Id__c FROM Account "
                "WHERE Name LIKE 'Queried%'",
                max_records=100,
                wait=0.1,
            )
        )
        self.assertEqual(len(sets), 3, "sets of 100, 100 and 50, by locator")
        rows = [line for text in sets for line in text.splitlines()[1:]]
        self.assertEqual(len(rows), 250)
        self.assertTrue(sets[0].startswith('"Id","Name","Gainsight_Company_Id__c"'), sets[0][:80])
        self.assertIn('"Queried 249","GS-QUERY-249"', sets[2])

    def test_an_expired_session_is_reported_as_such(self):
        stale = client(session_id="00D5g00000EMUL8!not-a-session")
        with self.assertRaises(SalesforceExpiredSession):
            stale.query("SELECT Id FROM Account")


class RealClientLogin(unittest.TestCase):
    """The OAuth grants as the real clients send them."""

    def accounts(self, sf):
        return sf.query("SELECT Id FROM Account")["totalSize"]

    def jwt_login(self, username):
        return Salesforce(
            username=username,
            consumer_key=os.environ["SF_CLIENT_ID"],
            privatekey_file=os.environ["SF_JWT_KEY"],
            session=emulator_session(),
            version="62.0",
        )

    def test_jwt_bearer_login(self):
        sf = self.jwt_login(os.environ["SF_USERNAME"])
        self.assertGreaterEqual(self.accounts(sf), 0)

    def test_jwt_bearer_for_another_user_is_refused(self):
        with self.assertRaises(SalesforceAuthenticationFailed) as refused:
            self.jwt_login("someone@else.example")
        self.assertIn("invalid_grant", str(refused.exception))

    def test_client_credentials_login_with_basic_auth(self):
        sf = Salesforce(
            consumer_key=os.environ["SF_CLIENT_ID"],
            consumer_secret=os.environ["SF_CLIENT_SECRET"],
            domain="emulator-dev-ed.my",
            session=emulator_session(),
            version="62.0",
        )
        self.assertGreaterEqual(self.accounts(sf), 0)

    def refresh(self, refresh_token):
        oauth = OAuth2Session(os.environ["SF_CLIENT_ID"])
        oauth.mount(LOGIN_HOSTS[0], ToEmulator(LOGIN_HOSTS[0]))
        return oauth.refresh_token(
            f"{LOGIN_HOSTS[0]}/services/oauth2/token",
            refresh_token=refresh_token,
            client_id=os.environ["SF_CLIENT_ID"],
            client_secret=os.environ["SF_CLIENT_SECRET"],
        )

    def test_refresh_token_grant(self):
        granted = self.refresh(os.environ["SF_REFRESH_TOKEN"])
        sf = Salesforce(
            instance_url=granted["instance_url"],
            session_id=granted["access_token"],
            session=emulator_session(),
            version="62.0",
        )
        self.assertGreaterEqual(self.accounts(sf), 0)

    def test_a_revoked_refresh_token_is_refused(self):
        with self.assertRaises(Exception) as refused:
            self.refresh("not-the-apps-token")
        self.assertIn("invalid_grant", str(refused.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
