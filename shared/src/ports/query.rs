//! The queries the API ports take: Gainsight's data-API conditions and SOQL selections, as
//! types (the adapters turn them into request bodies and query strings).

/// A Gainsight condition operator, as the data API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsOperator {
    Eq,
    In,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl GsOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            GsOperator::Eq => "EQ",
            GsOperator::In => "IN",
            GsOperator::Gt => "GT",
            GsOperator::Gte => "GTE",
            GsOperator::Lt => "LT",
            GsOperator::Lte => "LTE",
        }
    }
}

/// One condition of a Gainsight query: `field operator values`.
#[derive(Clone, Debug, PartialEq)]
pub struct GsCondition {
    pub field: String,
    pub operator: GsOperator,
    pub values: Vec<serde_json::Value>,
}

impl GsCondition {
    pub fn new(
        field: impl Into<String>,
        operator: GsOperator,
        values: Vec<serde_json::Value>,
    ) -> Self {
        Self {
            field: field.into(),
            operator,
            values,
        }
    }
}

/// A Gainsight query: conditions joined by AND (and, when `any_of` has groups, at least one group
/// of conditions that all hold), a projection, ordering, and paging.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GsQuery {
    pub select: Vec<String>,
    pub conditions: Vec<GsCondition>,
    /// Alternatives: the record must also satisfy every condition of one of these groups.
    pub any_of: Vec<Vec<GsCondition>>,
    /// (field, ascending).
    pub order_by: Vec<(String, bool)>,
    /// The most records to read; 0 reads every one, page by page.
    pub limit: usize,
    /// Records to skip before the first one read, for a caller that reads page by page itself.
    pub offset: usize,
}

/// A Salesforce read: `fields` of the `object` records whose every condition holds (each an
/// `IN` list of values), in `order_by` order. The adapter writes the query and quotes the values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SfSelect {
    pub object: String,
    pub fields: Vec<String>,
    /// (field, values): the field equals one of the values. No condition reads every record.
    pub conditions: Vec<(String, Vec<String>)>,
    /// Fields to order by, ascending.
    pub order_by: Vec<String>,
    /// Only records whose datetime `field` is at or after the instant (epoch ms).
    pub since: Option<(String, i64)>,
    /// Keyset paging: only records after this one in (datetime, id) order.
    pub after: Option<SfAfter>,
    /// At most this many records.
    pub limit: Option<usize>,
    /// The Recycle Bin's records as well (`queryAll`): a deleted record has `IsDeleted` true and,
    /// when a merge deleted it, `MasterRecordId` naming the record it was merged into.
    pub include_deleted: bool,
}

impl SfSelect {
    /// A read of `object` with nothing chosen yet.
    pub fn from_object(object: &str) -> Self {
        Self {
            object: object.to_string(),
            ..Self::default()
        }
    }
}

/// The last record of a page, in (datetime `field`, `id_field`) order: the next page is
/// `field > at OR (field = at AND id_field > id)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SfAfter {
    pub field: String,
    pub at_ms: i64,
    pub id_field: String,
    pub id: String,
}
