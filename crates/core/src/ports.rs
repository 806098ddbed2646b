//! Ports: how one service reaches another without reading its tables.
//! Each has an in-process implementation, and an HTTP one in the split shape.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::Serialize;

/// Order figures of one customer, as the user administration pages show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerStats {
    pub total_orders: i64,
    pub completed_orders: i64,
    pub cancelled_orders: i64,
    /// Integer cents.
    pub total_spent_cents: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("orders port: {0}")]
pub struct PortError(pub String);

/// What the users service asks the orders service.
#[async_trait]
pub trait CustomerOrders: Send + Sync + 'static {
    /// Figures per user id; users without orders may be missing from the map.
    async fn stats(&self, user_ids: &[i64]) -> Result<HashMap<i64, CustomerStats>, PortError>;
    /// The customer's recent orders, newest first, as the contract's user details show them.
    async fn recent_orders(&self, user_id: i64) -> Result<Vec<serde_json::Value>, PortError>;
    /// Removes a deleted user's orders; returns how many.
    async fn forget_customer(&self, user_id: i64) -> Result<u64, PortError>;
}

/// The answer while no orders service is part of the deployment: nobody has orders.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoOrders;

#[async_trait]
impl CustomerOrders for NoOrders {
    async fn stats(&self, _user_ids: &[i64]) -> Result<HashMap<i64, CustomerStats>, PortError> {
        Ok(HashMap::new())
    }
    async fn recent_orders(&self, _user_id: i64) -> Result<Vec<serde_json::Value>, PortError> {
        Ok(Vec::new())
    }
    async fn forget_customer(&self, _user_id: i64) -> Result<u64, PortError> {
        Ok(0)
    }
}
