//! Contract of the local AWS the tests rely on, checked through the real AWS SDK against moto as
//! the launcher runs it (with devstack/moto_speedups.py): long polling, visibility timeout,
//! redrive to the DLQ after maxReceiveCount, batch limits, conditional writes and GSI queries.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use devstack::moto::LocalAws;

fn entry(i: usize) -> SendMessageBatchRequestEntry {
    SendMessageBatchRequestEntry::builder()
        .id(i.to_string())
        .message_body(format!("m{i}"))
        .build()
        .expect("id and body set")
}

/// A queue whose messages reappear after `visibility_s` and move to a DLQ after `max_receives`.
async fn queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility_s: u32,
    max_receives: u32,
) -> Result<(String, String)> {
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await?;
    let dlq_url = dlq.queue_url().unwrap_or_default().to_string();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let redrive =
        format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receives}"}}"#);
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_s.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await?;
    Ok((queue.queue_url().unwrap_or_default().to_string(), dlq_url))
}

async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, wait_s: i32) -> Result<Vec<String>> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_s)
        .send()
        .await?;
    Ok(out
        .messages()
        .iter()
        .filter_map(|m| m.body().map(str::to_string))
        .collect())
}

#[tokio::test]
async fn sqs_keeps_the_semantics_the_stack_relies_on() -> Result<()> {
    let aws = LocalAws::start().await?;
    let sqs = aws_sdk_sqs::Client::new(&aws.sqs_sdk);
    let (url, dlq) = queue_with_dlq(&sqs, "contract", 1, 2).await?;

    // Batch limits: at most 10 entries a SendMessageBatch.
    let eleven: Vec<_> = (0..11).map(entry).collect();
    let err = sqs
        .send_message_batch()
        .queue_url(&url)
        .set_entries(Some(eleven))
        .send()
        .await;
    assert!(format!("{:?}", err.unwrap_err()).contains("TooManyEntriesInBatchRequest"));
    let ten: Vec<_> = (0..10).map(entry).collect();
    sqs.send_message_batch()
        .queue_url(&url)
        .set_entries(Some(ten))
        .send()
        .await?;

    // Visibility timeout: received messages are hidden, then come back.
    assert_eq!(receive(&sqs, &url, 0).await?.len(), 10);
    assert!(
        receive(&sqs, &url, 0).await?.is_empty(),
        "in flight: invisible"
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        receive(&sqs, &url, 0).await?.len(),
        10,
        "visible again after 1 s"
    );

    // Redrive: after maxReceiveCount (2) receives the next receive moves them to the DLQ.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(
        receive(&sqs, &url, 0).await?.is_empty(),
        "moved, not delivered a third time"
    );
    let mut in_dlq = receive(&sqs, &dlq, 0).await?;
    in_dlq.sort();
    assert_eq!(in_dlq.len(), 10, "{in_dlq:?}");

    // A bad receipt handle is reported, not silently accepted.
    let bad = aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
        .id("0")
        .receipt_handle("not-a-handle")
        .build()?;
    let out = sqs
        .delete_message_batch()
        .queue_url(&url)
        .entries(bad)
        .send()
        .await?;
    assert_eq!(out.failed().len(), 1);

    // Long polling: a receive waiting on an empty queue is woken by a send.
    let waiting = {
        let (sqs, url) = (sqs.clone(), url.clone());
        tokio::spawn(async move { receive(&sqs, &url, 10).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqs.send_message()
        .queue_url(&url)
        .message_body("late")
        .send()
        .await?;
    assert_eq!(waiting.await??, vec!["late".to_string()]);
    Ok(())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

#[tokio::test]
async fn dynamodb_conditional_writes_and_the_status_index() -> Result<()> {
    let aws = LocalAws::start().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&aws.sdk);
    let table = aws.table_name()?;

    // A conditional put succeeds once: the dedup claim.
    let claim = || {
        ddb.put_item()
            .table_name(table)
            .item("pk", s("EVENT#e1"))
            .item("sk", s("EVENT"))
            .condition_expression("attribute_not_exists(pk)")
            .send()
    };
    claim().await?;
    let second = claim().await.unwrap_err();
    assert!(format!("{second:?}").contains("ConditionalCheckFailedException"));

    // The sparse status index lists a record only while it carries the attribute.
    let key: HashMap<String, AttributeValue> =
        HashMap::from([("pk".into(), s("LEDGER#job")), ("sk".into(), s("G1"))]);
    let errors = || {
        ddb.query()
            .table_name(table)
            .index_name("error-index")
            .key_condition_expression("error_job = :j")
            .expression_attribute_values(":j", s("job"))
            .send()
    };
    ddb.update_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .update_expression("SET error_job = :j, version = if_not_exists(version, :z) + :o")
        .expression_attribute_values(":j", s("job"))
        .expression_attribute_values(":z", AttributeValue::N("0".into()))
        .expression_attribute_values(":o", AttributeValue::N("1".into()))
        .send()
        .await?;
    assert_eq!(errors().await?.items().len(), 1);
    ddb.update_item()
        .table_name(table)
        .set_key(Some(key))
        .update_expression("REMOVE error_job")
        .send()
        .await?;
    assert!(errors().await?.items().is_empty(), "left the index");
    Ok(())
}
