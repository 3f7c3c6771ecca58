//! `diff`: the ledger's view compared with both systems. Lists values that differ on the two
//! sides (direct field mappings, each with the side whose value the job's direction and conflict
//! rule keep), pairs whose record is gone on one side, and Salesforce records carrying a GSID the
//! ledger does not know; `--fix` resyncs each from the side that wins.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};
use shared::adapters::gainsight::GainsightClient;
use shared::adapters::salesforce::SalesforceClient;
use shared::config::{GainsightSettings, SalesforceSettings};
use shared::domain::first_load;
use shared::domain::job::{DataFlow, FieldMapping};
use shared::domain::{Fields, Job, LedgerKey, LedgerRecord, System};
use shared::ports::{
    GainsightApi, GsCondition, GsOperator, GsQuery, LedgerStore, SalesforceApi, SfSelect,
};

use crate::cli::Format;
use crate::env::Env;
use crate::invoke::resync_all;
use crate::ledger::records;
use crate::out::{print, Rows};

/// One difference found.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    pub gainsight_id: Option<String>,
    pub salesforce_id: Option<String>,
    pub kind: &'static str,
    pub detail: String,
    /// The system the fix resyncs the pair from: the one whose value is kept.
    pub fix_from: System,
}

/// The drift of one linked pair, given both records as read (absent: gone on that side).
pub fn compare(
    job: &Job,
    pair: &LedgerRecord,
    gs: Option<&Fields>,
    sf: Option<&Fields>,
) -> Vec<Drift> {
    let drift = |kind, detail: String, fix_from| Drift {
        gainsight_id: pair.key.gainsight_id().map(str::to_string),
        salesforce_id: pair.salesforce_id.clone(),
        kind,
        detail,
        fix_from,
    };
    let (gs, sf) = match (gs, sf) {
        (None, _) => {
            let detail = format!("no {} with this id", job.gainsight.object);
            return vec![drift("missing in Gainsight", detail, System::Salesforce)];
        }
        (_, None) => {
            let detail = format!("no {} with this Id", job.salesforce.object);
            return vec![drift("missing in Salesforce", detail, System::Gainsight)];
        }
        (Some(g), Some(s)) => (g, s),
    };
    let settled = first_load::settle(job, gs, sf);
    let show = |v: Option<&Value>| v.map(Value::to_string).unwrap_or_else(|| "null".into());
    (job.fields.iter())
        .filter_map(|f| {
            let kept = settled.iter().find(|u| u.field == f.field_in(u.target))?;
            let from = kept.target.other();
            let detail = format!(
                "{}.{} = {} but {}.{} = {}; {} keeps {}'s ({})",
                job.gainsight.object,
                f.gainsight,
                show(gs.get(&f.gainsight)),
                job.salesforce.object,
                f.salesforce,
                show(sf.get(&f.salesforce)),
                f.gainsight,
                from.label(),
                rule_of(f),
            );
            Some(drift("values differ", detail, from))
        })
        .collect()
}

/// What decides a field's side: its one-way flow, or its conflict rule.
fn rule_of(f: &FieldMapping) -> &'static str {
    match f.flow {
        DataFlow::GainsightToSalesforce => "gainsight_to_salesforce",
        DataFlow::SalesforceToGainsight => "salesforce_to_gainsight",
        DataFlow::Bidirectional => f.conflict_rule().as_str(),
    }
}

/// Both systems' clients, with the secrets decrypted from the table.
pub(crate) async fn apis(env: &Env) -> anyhow::Result<(SalesforceClient, GainsightClient)> {
    let sf = env
        .clients
        .salesforce(&env.resources, &SalesforceSettings::from_env()?)
        .await?;
    let gs = env
        .clients
        .gainsight(&env.resources, &GainsightSettings::from_env()?)
        .await?;
    Ok((sf, gs))
}

/// The records of `object` in `system` whose `field` is one of `ids`, by that field.
async fn read_by(
    (sf, gs): (&dyn SalesforceApi, &dyn GainsightApi),
    (system, object, field): (System, &str, &str),
    fields: Vec<String>,
    ids: &[String],
) -> anyhow::Result<BTreeMap<String, Fields>> {
    let mut out = BTreeMap::new();
    let per_query = if system == System::Salesforce {
        200
    } else {
        500
    };
    for chunk in ids.chunks(per_query) {
        let rows = match system {
            System::Salesforce => {
                let select = SfSelect {
                    fields: fields.clone(),
                    conditions: vec![(field.to_string(), chunk.to_vec())],
                    ..SfSelect::from_object(object)
                };
                sf.select(&select).await?
            }
            System::Gainsight => {
                let values = chunk.iter().map(|i| json!(i)).collect();
                let query = GsQuery {
                    select: fields.clone(),
                    conditions: vec![GsCondition::new(field, GsOperator::In, values)],
                    ..GsQuery::default()
                };
                gs.query(object, &query).await?
            }
        };
        for r in rows {
            if let Some(id) = r.get(field).and_then(Value::as_str) {
                out.insert(id.to_string(), r);
            }
        }
    }
    Ok(out)
}

/// Salesforce records (a sample of `limit`, 0: all) carrying a GSID no ledger record has.
async fn unknown_pairs(
    store: &dyn LedgerStore,
    sf: &dyn SalesforceApi,
    job: &Job,
    limit: usize,
) -> anyhow::Result<Vec<Drift>> {
    let Some(ext) = job.gsid_external_field() else {
        return Ok(Vec::new());
    };
    let select = SfSelect {
        fields: vec![job.salesforce.id_field.clone(), ext.to_string()],
        order_by: vec![job.salesforce.id_field.clone()],
        limit: (limit > 0).then_some(limit),
        ..SfSelect::from_object(&job.salesforce.object)
    };
    let rows = sf.select(&select).await?;
    let carried: BTreeMap<String, String> = rows
        .iter()
        .filter_map(|r| {
            let gsid = r.get(ext)?.as_str().filter(|s| !s.is_empty())?;
            let id = r.get(&job.salesforce.id_field)?.as_str()?;
            Some((gsid.to_string(), id.to_string()))
        })
        .collect();
    let keys: Vec<LedgerKey> = carried.keys().cloned().map(LedgerKey::Gainsight).collect();
    let known: BTreeSet<LedgerKey> = store
        .ledgers(&job.name, &keys)
        .await?
        .into_iter()
        .map(|r| r.key)
        .collect();
    Ok(carried
        .into_iter()
        .filter(|(gsid, _)| !known.contains(&LedgerKey::Gainsight(gsid.clone())))
        .map(|(gsid, id)| Drift {
            detail: format!(
                "{}.{ext} = {gsid}, a pair the ledger does not know",
                job.salesforce.object
            ),
            gainsight_id: Some(gsid),
            salesforce_id: Some(id),
            kind: "unknown pair",
            fix_from: System::Gainsight,
        })
        .collect())
}

/// Compares; returns whether drift remains (exit code 4).
pub async fn diff(
    env: &Env,
    job: &str,
    limit: usize,
    fix: bool,
    format: Format,
) -> anyhow::Result<bool> {
    let job = env.job(job)?;
    let store = env.store();
    let mut pairs: Vec<LedgerRecord> = records(&store, job, None)
        .await?
        .into_iter()
        .filter(|r| r.key.gainsight_id().is_some() && r.salesforce_id.is_some())
        .collect();
    if limit > 0 {
        pairs.truncate(limit);
    }
    let (sf, gs) = apis(env).await?;
    let gsids: Vec<String> = pairs
        .iter()
        .filter_map(|r| r.key.gainsight_id().map(str::to_string))
        .collect();
    let sfids: Vec<String> = pairs
        .iter()
        .filter_map(|r| r.salesforce_id.clone())
        .collect();
    let mut gs_fields = job.fields_read_from(System::Gainsight);
    gs_fields.extend(job.fields.iter().map(|f| f.gainsight.clone()));
    let mut sf_fields = job.fields_read_from(System::Salesforce);
    sf_fields.extend(job.fields.iter().map(|f| f.salesforce.clone()));
    for list in [&mut gs_fields, &mut sf_fields] {
        list.sort();
        list.dedup();
    }
    let both: (&dyn SalesforceApi, &dyn GainsightApi) = (&sf, &gs);
    let gs_side = (
        System::Gainsight,
        job.gainsight.object.as_str(),
        job.gainsight.id_field.as_str(),
    );
    let sf_side = (
        System::Salesforce,
        job.salesforce.object.as_str(),
        job.salesforce.id_field.as_str(),
    );
    let in_gs = read_by(both, gs_side, gs_fields, &gsids).await?;
    let in_sf = read_by(both, sf_side, sf_fields, &sfids).await?;
    let mut drift: Vec<Drift> = Vec::new();
    for pair in &pairs {
        let g = pair.key.gainsight_id().and_then(|id| in_gs.get(id));
        let s = pair.salesforce_id.as_ref().and_then(|id| in_sf.get(id));
        drift.extend(compare(job, pair, g, s));
    }
    drift.extend(unknown_pairs(&store, &sf, job, limit).await?);
    report(job, pairs.len(), &drift, format)?;
    if fix && !drift.is_empty() {
        return fix_drift(env, job, &drift).await.map(|()| false);
    }
    Ok(!drift.is_empty())
}

fn report(job: &Job, compared: usize, drift: &[Drift], format: Format) -> anyhow::Result<()> {
    let mut rows = Rows::new(&["gainsight id", "salesforce id", "drift", "detail"]).wrapping_last();
    for d in drift {
        rows.push(vec![
            d.gainsight_id.clone().unwrap_or_else(|| "-".into()),
            d.salesforce_id.clone().unwrap_or_else(|| "-".into()),
            d.kind.into(),
            d.detail.clone(),
        ]);
    }
    if format == Format::Table {
        say!(
            "{}: {compared} linked pairs compared, {} differences",
            job.name,
            drift.len()
        )?;
        if drift.is_empty() {
            return Ok(());
        }
    }
    print(format, &rows, drift)
}

/// Resyncs every drifted record from the system whose values it keeps: by GSID, or by
/// Salesforce Id when Gainsight no longer has it.
async fn fix_drift(env: &Env, job: &Job, drift: &[Drift]) -> anyhow::Result<()> {
    for from in [System::Gainsight, System::Salesforce] {
        let ids: BTreeSet<String> = (drift.iter())
            .filter(|d| d.fix_from == from)
            .filter_map(|d| match d.kind {
                "missing in Gainsight" => d.salesforce_id.clone(),
                _ => d.gainsight_id.clone().or_else(|| d.salesforce_id.clone()),
            })
            .collect();
        if ids.is_empty() {
            continue;
        }
        let request = resync::ResyncRequest {
            job: Some(job.name.clone()),
            ids: Some(ids.into_iter().collect()),
            from: Some(from),
            ..Default::default()
        };
        let reports = resync_all(env, request).await?;
        let queued: usize = reports.iter().map(|r| r.queued).sum();
        let runs: Vec<String> = reports.iter().map(|r| r.run.to_string()).collect();
        say!(
            "fix: {queued} records queued for resync from {} (run {})",
            from.label(),
            runs.join(", ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_drifts_by_field_or_by_a_missing_side() {
        let jobs = shared::domain::Jobs::builtin();
        let job = jobs.named("company_account").unwrap();
        let mut pair = LedgerRecord::new("company_account", LedgerKey::Gainsight("G1".into()));
        pair.salesforce_id = Some("001000000000001AAA".into());
        let gs: Fields = json!({"Gsid": "G1", "Name": "Acme", "Arr": 10, "Phone": "1",
            "ModifiedDate": 1_796_169_600_000_i64})
        .as_object()
        .cloned()
        .unwrap();
        let sf: Fields = json!({"Id": "001000000000001AAA", "Name": "Acme Corp",
            "AnnualRevenue": 10.0, "Phone": "2", "LastModifiedDate": "2026-12-01T00:00:00.000Z"})
        .as_object()
        .cloned()
        .unwrap();
        let found = compare(job, &pair, Some(&gs), Some(&sf));
        assert_eq!(found.len(), 2, "{found:?}");
        // Name is two-way, newest: Gainsight's edit is the later one. Phone flows from Salesforce.
        assert!(found[0].detail.contains(
            "Company.Name = \"Acme\" but Account.Name = \"Acme Corp\"; Name keeps Gainsight's (newest)"
        ), "{}", found[0].detail);
        assert_eq!(found[0].fix_from, System::Gainsight);
        assert!(
            found[1]
                .detail
                .ends_with("Phone keeps Salesforce's (salesforce_to_gainsight)"),
            "{}",
            found[1].detail
        );
        assert_eq!(found[1].fix_from, System::Salesforce);
        let gone = compare(job, &pair, Some(&gs), None);
        assert_eq!(gone[0].kind, "missing in Salesforce");
        assert_eq!(gone[0].fix_from, System::Gainsight);
    }
}
