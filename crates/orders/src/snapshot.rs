//! The orders as they are now, page by page, for consumers that rebuild or
//! check what they derived from the outbox events ([`OrderSource`]).

use std::collections::HashMap;

use async_trait::async_trait;
use ecap_core::{
    events::{EventLine, OrderEvent, OrderEventKind, OrderSource},
    ports::PortError,
};
use sea_query::{Expr, ExprTrait, Order, Query};

use crate::{
    OrderStore,
    store::{OrderItems, Orders},
};

/// [`OrderSource`] over the orders tables.
#[derive(Clone, Debug)]
pub struct OrdersSnapshot(pub OrderStore);

#[derive(sqlx::FromRow)]
struct Head {
    id: i64,
    user_id: i64,
    status: String,
    event_seq: i64,
    total_cents: i64,
    payment_method: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct Line {
    order_id: i64,
    product_id: String,
    category: String,
    quantity: i64,
    price_cents: i64,
}

#[async_trait]
impl OrderSource for OrdersSnapshot {
    async fn orders_after(&self, after: i64, limit: usize) -> Result<Vec<OrderEvent>, PortError> {
        let db = self.0.db();
        let fail = |e: ecap_core::db::DbError| PortError(format!("reading orders: {e}"));
        let heads: Vec<Head> = db
            .fetch_all(
                db.pool(),
                &Query::select()
                    .columns([
                        Orders::Id,
                        Orders::UserId,
                        Orders::Status,
                        Orders::EventSeq,
                        Orders::TotalCents,
                        Orders::PaymentMethod,
                        Orders::CreatedAt,
                        Orders::UpdatedAt,
                    ])
                    .from(Orders::Table)
                    .and_where(Expr::col(Orders::Id).gt(after))
                    .order_by(Orders::Id, Order::Asc)
                    .limit(limit as u64)
                    .to_owned(),
            )
            .await
            .map_err(fail)?;
        let (Some(first), Some(last)) = (heads.first(), heads.last()) else {
            return Ok(Vec::new());
        };
        let lines: Vec<Line> = db
            .fetch_all(
                db.pool(),
                &Query::select()
                    .columns([
                        OrderItems::OrderId,
                        OrderItems::ProductId,
                        OrderItems::Category,
                        OrderItems::Quantity,
                        OrderItems::PriceCents,
                    ])
                    .from(OrderItems::Table)
                    .and_where(Expr::col(OrderItems::OrderId).gte(first.id))
                    .and_where(Expr::col(OrderItems::OrderId).lte(last.id))
                    .order_by(OrderItems::OrderId, Order::Asc)
                    .order_by(OrderItems::Id, Order::Asc)
                    .to_owned(),
            )
            .await
            .map_err(fail)?;
        let mut by_order: HashMap<i64, Vec<EventLine>> = HashMap::with_capacity(heads.len());
        for l in lines {
            by_order.entry(l.order_id).or_default().push(EventLine {
                product_id: l.product_id,
                category: l.category,
                quantity: l.quantity,
                unit_price_cents: l.price_cents,
            });
        }
        Ok(heads
            .into_iter()
            .map(|h| OrderEvent {
                event_id: String::new(),
                order_id: h.id,
                user_id: h.user_id,
                seq: h.event_seq,
                kind: OrderEventKind::Created,
                from_status: None,
                to_status: h.status,
                lines: by_order.remove(&h.id).unwrap_or_default(),
                total_cents: h.total_cents,
                payment_method: h.payment_method,
                placed_at: h.created_at,
                at: h.updated_at,
            })
            .collect())
    }

    async fn order_count(&self) -> Result<u64, PortError> {
        let db = self.0.db();
        let (n,): (i64,) = db
            .fetch_one(
                db.pool(),
                &Query::select()
                    .expr(db.backend().cast_bigint(Expr::col(Orders::Id).count()))
                    .from(Orders::Table)
                    .to_owned(),
            )
            .await
            .map_err(|e| PortError(format!("counting orders: {e}")))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
